"""Audio-video fixation over HTTP: media chunks and camera stills, one request each.

For clients that cannot keep a socket; the candidate's page uses the media socket
(engine/server/media_socket.py). What is taken and how is engine/server/uploads.py.
"""

from __future__ import annotations

from aiohttp import web

from engine.exceptions import AuthError, RequestError
from engine.fixation import MAX_CHUNK_BYTES, MAX_SNAPSHOT_BYTES, base_type
from engine.server import keys
from engine.server.hall import LiveSitting
from engine.server.uploads import (
    Refusal,
    refusal_if_closed,
    seq_refusal,
    take_chunk,
    take_snapshot,
)

routes = web.RouteTableDef()


def refusal(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError("send the token as 'Authorization: Bearer …'", code="no_token")
    return token


async def _sitting(request: web.Request) -> LiveSitting:
    hall = request.app[keys.HALL]
    claims = hall.tokens.verify(bearer(request), role="candidate")
    return await hall.sitting_for(claims, request.match_info["part"])


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is known to exceed `limit`."""
    if request.content_length is not None and request.content_length > limit:
        return None
    parts: list[bytes] = []
    size = 0
    while True:
        piece = await request.content.read(64 * 1024)
        if not piece:
            return b"".join(parts)
        size += len(piece)
        if size > limit:
            return None
        parts.append(piece)


@routes.post("/api/v1/media/{part}/chunk")
async def upload_chunk(request: web.Request) -> web.Response:
    if (later := _come_back_later(request)) is not None:
        return later
    with request.app[keys.UPLOADS].one():
        return await _chunk(request)


@routes.post("/api/v1/media/{part}/snapshot")
async def upload_snapshot(request: web.Request) -> web.Response:
    if (later := _come_back_later(request)) is not None:
        return later
    with request.app[keys.UPLOADS].one():
        return await _snapshot(request)


def _come_back_later(request: web.Request) -> web.Response | None:
    """`503 busy` with `Retry-After` while the node is behind (engine/server/upload_gate.py)."""
    gate, uploads = request.app[keys.UPLOAD_GATE], request.app[keys.UPLOADS]
    why = gate.why_wait(uploads, request.app[keys.LOOP_LAG])
    if why is None:
        return None
    seconds = gate.retry_after(uploads)
    return web.json_response(
        {
            "error": "busy",
            "message": f"{why}: send it again in {seconds} s",
            "retry_after": seconds,
        },
        status=503,
        headers={"Retry-After": str(seconds)},
    )


async def _chunk(request: web.Request) -> web.Response:
    hall = request.app[keys.HALL]
    try:
        live = await _sitting(request)
    except RequestError as error:
        return _refused(error)
    try:
        seq = int(request.query.get("seq", ""))
        client_time = (
            float(request.query["client_time"]) if "client_time" in request.query else None
        )
    except ValueError:
        return refusal(400, "bad_seq", "give seq as a whole number and client_time as seconds")
    early = refusal_if_closed(live) or seq_refusal(seq)
    if early is not None:
        return _http(early)
    data = await _read_body(request, MAX_CHUNK_BYTES)
    media_type = base_type(request.headers.get("Content-Type", ""))
    taken = await take_chunk(hall, live, seq, media_type, data, client_time)
    if isinstance(taken, Refusal):
        return _http(taken)
    return web.json_response(
        {
            "seq": seq,
            "sha256": taken.sha256,
            "size": taken.size,
            "server_time": taken.server_time,
        }
    )


async def _snapshot(request: web.Request) -> web.Response:
    hall = request.app[keys.HALL]
    try:
        live = await _sitting(request)
    except RequestError as error:
        return _refused(error)
    if (closed := refusal_if_closed(live)) is not None:
        return _http(closed)
    data = await _read_body(request, MAX_SNAPSHOT_BYTES)
    media_type = base_type(request.headers.get("Content-Type", ""))
    taken = await take_snapshot(hall, live, media_type, data)
    if isinstance(taken, Refusal):
        return _http(taken)
    return web.json_response({"seq": taken.seq, "sha256": taken.sha256, "size": taken.size})


def _http(refused: Refusal) -> web.Response:
    return refusal(refused.status, refused.code, refused.message)


def _refused(error: RequestError) -> web.Response:
    status = 401 if isinstance(error, AuthError) else 403 if error.close_code == 4403 else 400
    return refusal(status, error.code, error.message)
