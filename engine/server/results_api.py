"""Results over HTTP: the candidate acknowledges a result and appeals it, a member countersigns.

The signatures (UA-9) and appeals (UA-16) themselves live in `engine.result_signatures` and
`engine.appeals`; this module only checks who is asking and turns refusals into replies.
"""

from __future__ import annotations

from typing import Any, cast

from aiohttp import web

from engine.appeals import file_appeal
from engine.exceptions import AppealRefused, AuthError, ExamhallError, RequestError
from engine.records import RecordStore
from engine.result_signatures import acknowledge, countersign
from engine.server import keys
from engine.server.media import bearer
from engine.server.proctor_socket import staff_for
from engine.server.proctoring import check_site
from engine.server.rest import error_response

routes = web.RouteTableDef()


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RequestError("the body must be a JSON object", code="bad_json")
    return body


def _signed(record: Any) -> web.Response:
    return web.json_response(
        {
            "sitting": record.sitting_id,
            "role": record.role,
            "signer": record.signer,
            "at": record.at,
            "key_id": record.key_id,
            "signature": record.signature,
        }
    )


@routes.post("/api/v1/results/{part}/acknowledge")
async def acknowledge_result(request: web.Request) -> web.Response:
    """The candidate has seen their result (UA-9): recorded and sealed."""
    hall = request.app[keys.HALL]
    try:
        claims = hall.tokens.verify(bearer(request), role="candidate")
        live = await hall.sitting_for(claims, request.match_info["part"])
        record = await acknowledge(
            cast(RecordStore, hall.store),
            hall.schemes,
            live.runtime.exam,
            claims.subject,
            live.part.id,
            hall.now(),
        )
    except AuthError as error:
        return error_response(error, 401)
    except RequestError as error:
        return error_response(error, 403 if error.close_code == 4403 else 409)
    except ExamhallError as error:
        return error_response(RequestError(str(error), code="not_signable"), 409)
    return _signed(record)


@routes.post("/api/v1/results/countersign")
async def countersign_result(request: web.Request) -> web.Response:
    """A working-group member (proctor or admin of the site) countersigns an acknowledged result."""
    hall = request.app[keys.HALL]
    try:
        staff = staff_for(hall, bearer(request))
        if not staff.may_act:
            raise RequestError("observers do not sign", code="forbidden")
        sitting_id = str((await _json(request)).get("sitting", ""))
        check_site(staff, hall, sitting_id)
        exam_id, candidate_id, part_id = sitting_id.split("/")
        record = await countersign(
            cast(RecordStore, hall.store),
            hall.schemes,
            hall.exams[exam_id].exam,
            candidate_id,
            part_id,
            staff.login,
            hall.now(),
        )
    except AuthError as error:
        return error_response(error, 401)
    except RequestError as error:
        return error_response(error, 403 if error.code == "forbidden" else 400)
    except ExamhallError as error:
        return error_response(RequestError(str(error), code="not_signable"), 409)
    return _signed(record)


@routes.post("/api/v1/appeals")
async def appeal(request: web.Request) -> web.Response:
    """An appeal filed by the candidate personally (UA-16), within its deadline."""
    hall = request.app[keys.HALL]
    try:
        claims = hall.tokens.verify(bearer(request), role="candidate")
        body = await _json(request)
        runtime = hall.exams[claims.exam_id]
        part = body.get("part")
        record = await file_appeal(
            cast(RecordStore, hall.store),
            hall.schemes,
            runtime.exam,
            candidate_id=claims.subject,
            filed_by=claims.subject,
            subject=str(body.get("subject", "")),
            grounds=str(body.get("grounds", "")),
            now=hall.now(),
            part_id=part if isinstance(part, str) else None,
        )
    except AuthError as error:
        return error_response(error, 401)
    except AppealRefused as refused:
        return web.json_response(
            {"error": refused.code, "message": refused.message, "rule": refused.rule}, status=422
        )
    except RequestError as error:
        return error_response(error, 400)
    return web.json_response(
        {
            "number": record.number,
            "status": record.status,
            "filed_at": record.filed_at,
            "decide_by": record.decide_by,
        }
    )
