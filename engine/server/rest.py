"""The HTTP side: sign-in with an access code, health, exam info and the demo roster."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from aiohttp import web

from engine.exceptions import AuthError, RequestError
from engine.server import keys

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
    exam = signed.exam
    return web.json_response(
        {
            "token": signed.token,
            "expires_at": signed.expires_at,
            "candidate": {"id": signed.candidate.id, "name": signed.candidate.full_name},
            "exam": _exam_info(exam),
        }
    )


def _exam_info(exam: Any) -> dict[str, Any]:
    return {
        "id": exam.id,
        "title": dict(exam.title),
        "languages": list(exam.languages),
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
    return web.json_response(
        {
            "ok": True,
            "exams": sorted(hall.exams),
            "live_sittings": len(hall.live),
            "connected": sum(1 for live in hall.live.values() if live.link is not None),
            "sockets": len(request.app[keys.SOCKETS]),
        }
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
