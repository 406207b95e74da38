"""The HTTP side: sign-in with an access code, health, exam info and the demo roster."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path
from typing import Any

from aiohttp import web

from engine.exceptions import AdmissionRefused, AuthError, RequestError
from engine.fixation import stored_bytes
from engine.server import keys
from engine.server.auth import password_matches

routes = web.RouteTableDef()


def error_response(error: RequestError, status: int) -> web.Response:
    return web.json_response({"error": error.code, "message": error.message}, status=status)


@routes.post("/api/v1/signin")
async def sign_in(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return error_response(RequestError("the body must be JSON", code="bad_json"), 400)
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, str) or not code.strip():
        return error_response(RequestError("give the access code as 'code'", code="no_code"), 400)
    hall = request.app[keys.HALL]
    try:
        signed = await hall.sign_in(code)
    except AuthError as error:
        return error_response(error, 401)
    except AdmissionRefused as refused:
        return web.json_response(
            {
                "error": refused.code,
                "message": refused.message,
                "rule": refused.rule,
                "allowed_from": refused.allowed_from,
            },
            status=403,
        )
    exam = signed.exam
    return web.json_response(
        {
            "token": signed.token,
            "expires_at": signed.expires_at,
            "candidate": {"id": signed.candidate.id, "name": signed.candidate.full_name},
            "exam": _exam_info(exam),
            "media_socket": media_socket_url(request),
        }
    )


def media_socket_url(request: web.Request) -> str:
    """Where the page sends its recording (docs/protocol.md 6.4): this server's own
    `/ws/media`, or the media process's port on the host the page signed in at."""
    config = request.app[keys.CONFIG]
    if config.media_public_url is not None:
        return config.media_public_url
    scheme = "wss" if request.secure else "ws"
    link = request.app.get(keys.MEDIA_LINK)
    if link is None or link.port is None:
        return f"{scheme}://{request.host}/ws/media"
    host = request.url.host or config.media_host
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    return f"{scheme}://{host}:{link.port}/ws/media"


def _exam_info(exam: Any) -> dict[str, Any]:
    return {
        "id": exam.id,
        "title": dict(exam.title),
        "languages": list(exam.languages),
        "admission": exam.admission.value,
        "identity_document": exam.identity_document,
        "recording": exam.recording.value,
        "parts": [
            {
                "id": part.id,
                "title": dict(part.title),
                "minutes": part.time_limit_s / 60,
                "items": part.blueprint.total,
            }
            for part in exam.parts
        ],
    }


@routes.get("/api/v1/health")
async def health(request: web.Request) -> web.Response:
    hall = request.app[keys.HALL]
    pauses = request.app.get(keys.COLLECTOR)
    link = request.app.get(keys.MEDIA_LINK)
    return web.json_response(
        {
            "ok": True,
            "exams": sorted(hall.exams),
            "live_sittings": len(hall.live),
            "connected": sum(1 for live in hall.live.values() if live.link is not None),
            "sockets": len(request.app[keys.SOCKETS]),
            "media_sockets": len(request.app[keys.QUIET_MEDIA].last_heard)
            + (link.sockets if link is not None else 0),
            "loop_lag_ms": request.app[keys.LOOP_LAG].summary_ms(),
            "uploads": request.app[keys.UPLOADS].summary()
            | {
                "turned_away": dict(request.app[keys.UPLOAD_GATE].turned_away),
                "holding": request.app[keys.UPLOAD_GATE].holding,
                "held": request.app[keys.UPLOAD_GATE].held,
                "release_rate_per_s": round(request.app[keys.UPLOAD_GATE].release_rate_per_s, 1),
            },
            "store": request.app[keys.STORE].stats(),
        }
        | ({"media_process": link.stats()} if link is not None else {})
        | ({"collector": pauses.summary_ms()} if pauses is not None else {})
    )


@routes.get("/api/v1/exams/{exam_id}")
async def exam_info(request: web.Request) -> web.Response:
    hall = request.app[keys.HALL]
    runtime = hall.exams.get(request.match_info["exam_id"])
    if runtime is None:
        return error_response(RequestError("no such exam", code="unknown_exam"), 404)
    return web.json_response(_exam_info(runtime.exam))


@routes.get("/api/v1/demo/roster")
async def demo_roster(request: web.Request) -> web.Response:
    """Unused demo access codes, for `examhall simulate` and trying the pages. Demo mode only."""
    config = request.app[keys.CONFIG]
    if not config.demo:
        return error_response(RequestError("the demo roster is off", code="not_demo"), 404)
    exam_id = request.query.get("exam", "")
    limit = int(request.query.get("limit", "100000"))
    unused = await request.app[keys.STORE].unused_codes(exam_id)
    roster = [
        {"candidate": candidate_id, "code": code}
        for candidate_id, code in read_codes(config.data_dir, exam_id)
        if candidate_id in unused
    ]
    return web.json_response({"exam": exam_id, "candidates": roster[:limit]})


def codes_file(data_dir: Path, exam_id: str) -> Path:
    return data_dir / "access-codes" / f"{exam_id}.csv"


def read_codes(data_dir: Path, exam_id: str) -> list[tuple[str, str]]:
    path = codes_file(data_dir, exam_id)
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["candidate"], row["code"]) for row in csv.DictReader(handle)]


@routes.post("/api/v1/staff/signin")
async def staff_sign_in(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except ValueError:
        return error_response(RequestError("the body must be JSON", code="bad_json"), 400)
    if not isinstance(body, dict):
        return error_response(RequestError("the body must be a JSON object", code="bad_json"), 400)
    login, password = body.get("login"), body.get("password")
    if not isinstance(login, str) or not isinstance(password, str):
        return error_response(
            RequestError("give 'login' and 'password' as strings", code="no_login"), 400
        )
    hall = request.app[keys.HALL]
    wanted = body.get("exam")
    matches = [
        runtime
        for runtime in hall.exams.values()
        if login in runtime.staff and (wanted is None or runtime.exam.id == wanted)
    ]
    refused = AuthError("unknown login or wrong password", code="bad_login")
    if len(matches) > 1:
        return error_response(
            RequestError("this login exists in several exams; give 'exam'", code="which_exam"), 400
        )
    if not matches or hall.records is None:
        return error_response(refused, 401)
    runtime = matches[0]
    stored = await hall.records.password_hash(runtime.exam.id, login)
    if not await asyncio.to_thread(password_matches, password, stored):
        return error_response(refused, 401)
    staff = runtime.staff[login]
    token, expires_at = hall.tokens.issue(
        subject=login, exam_id=runtime.exam.id, role=staff.role.value, now=hall.now()
    )
    return web.json_response(
        {
            "token": token,
            "expires_at": expires_at,
            "role": staff.role.value,
            "name": staff.name,
            "exam": _exam_info(runtime.exam),
            "sites": [
                {"id": site.id, "title": dict(site.title)}
                for site in runtime.exam.sites
                if site.id in staff.sites
            ],
        }
    )


@routes.get("/api/v1/sittings/{sitting_id:.+}/snapshot")
async def latest_snapshot(request: web.Request) -> web.StreamResponse:
    """The latest camera still of a sitting, for staff of its site."""
    from engine.server.media import bearer
    from engine.server.proctor_socket import staff_for
    from engine.server.proctoring import check_site

    hall = request.app[keys.HALL]
    sitting_id = request.match_info["sitting_id"]
    try:
        staff = staff_for(hall, bearer(request))
        check_site(staff, hall, sitting_id)
    except AuthError as error:
        return error_response(error, 401)
    except RequestError as error:
        return error_response(error, 403 if error.code == "forbidden" else 404)
    stills = [
        r for r in await hall.media_records(sitting_id) if r.kind == "snapshot" and not r.purged
    ]
    if not stills:
        return error_response(RequestError("no camera still yet", code="no_snapshot"), 404)
    latest = stills[-1]
    data_dir = request.app[keys.CONFIG].data_dir
    try:
        data = await asyncio.to_thread(stored_bytes, data_dir, latest)
    except OSError as error:
        missing = RequestError(f"camera still {latest.seq} cannot be read: {error}", code="no_file")
        return error_response(missing, 500)
    return web.Response(
        body=data, content_type=latest.media_type, headers={"Cache-Control": "no-store"}
    )


@routes.get("/api/v1/demo/staff")
async def demo_staff(request: web.Request) -> web.Response:
    """Demo staff logins and passwords, for the simulation and trying the dashboard."""
    config = request.app[keys.CONFIG]
    if not config.demo:
        return error_response(RequestError("the demo roster is off", code="not_demo"), 404)
    exam_id = request.query.get("exam", "")
    path = staff_file(config.data_dir, exam_id)
    rows: list[dict[str, str]] = []
    if path.exists():
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    return web.json_response({"exam": exam_id, "staff": rows})


def staff_file(data_dir: Path, exam_id: str) -> Path:
    return data_dir / "access-codes" / f"{exam_id}-staff.csv"
