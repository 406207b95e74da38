"""Audio-video fixation over HTTP: media chunks and camera stills from the candidate's page.

A chunk is appended to a segment file and synced (engine/store/file_child.py), then recorded
(size, media type, SHA-256, client and server time, segment and offset) in one store job that
also journals it; only then is it acknowledged. Anything wrong is refused with a code, and the
refusal is itself recorded as an irregularity for the proctor — nothing is dropped silently.
"""

from __future__ import annotations

from aiohttp import web

from engine.detection import Finding
from engine.exceptions import AuthError, RequestError, StoreError
from engine.fixation import (
    MAX_CHUNK_BYTES,
    MAX_SNAPSHOT_BYTES,
    Arrival,
    Kind,
    MediaRecord,
    Upload,
    base_type,
    chunk_problem,
    snapshot_problem,
)
from engine.server import keys
from engine.server.hall import Hall, LiveSitting
from engine.store.proctoring import ProctoringRecords

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
    if live.sitting.state.is_final:
        return refusal(410, "sitting_closed", "the sitting is closed; recording is over")
    try:
        seq = int(request.query.get("seq", ""))
        client_time = (
            float(request.query["client_time"]) if "client_time" in request.query else None
        )
    except ValueError:
        return refusal(400, "bad_seq", "give seq as a whole number and client_time as seconds")
    if seq < 1:
        return refusal(400, "bad_seq", "chunk numbers start at 1")
    data = await _read_body(request, MAX_CHUNK_BYTES)
    if data is None:
        await hall.note(
            live,
            Finding("media-oversized", f"chunk {seq} over {MAX_CHUNK_BYTES} bytes", 2),
            "server",
        )
        return refusal(413, "chunk_too_large", f"a chunk may have at most {MAX_CHUNK_BYTES} bytes")
    media_type = base_type(request.headers.get("Content-Type", ""))
    problem = chunk_problem(media_type, data, first=seq == 1)
    if problem is not None:
        await hall.note(live, Finding("media-bad", f"chunk {seq}: {problem}", 2), "server")
        return refusal(415, "bad_media", problem)
    record = await _store(request, hall, live, Kind.CHUNK, seq, media_type, data, client_time)
    if isinstance(record, web.Response):
        return record
    return web.json_response(
        {
            "seq": seq,
            "sha256": record.sha256,
            "size": record.size,
            "server_time": record.server_time,
        }
    )


async def _snapshot(request: web.Request) -> web.Response:
    hall = request.app[keys.HALL]
    try:
        live = await _sitting(request)
    except RequestError as error:
        return _refused(error)
    if live.sitting.state.is_final:
        return refusal(410, "sitting_closed", "the sitting is closed; recording is over")
    data = await _read_body(request, MAX_SNAPSHOT_BYTES)
    if data is None:
        return refusal(
            413, "snapshot_too_large", f"a still may have at most {MAX_SNAPSHOT_BYTES} bytes"
        )
    media_type = base_type(request.headers.get("Content-Type", ""))
    problem = snapshot_problem(media_type, data)
    if problem is not None:
        await hall.note(live, Finding("media-bad", f"camera still: {problem}", 1), "server")
        return refusal(415, "bad_media", problem)
    records = _records(request)
    async with live.media_lock:
        seq = await records.next_snapshot_seq(live.sitting.id)
        record = await _store(request, hall, live, Kind.SNAPSHOT, seq, media_type, data, None)
    if isinstance(record, web.Response):
        return record
    return web.json_response({"seq": seq, "sha256": record.sha256, "size": record.size})


async def _store(
    request: web.Request,
    hall: Hall,
    live: LiveSitting,
    kind: Kind,
    seq: int,
    media_type: str,
    data: bytes,
    client_time: float | None,
) -> MediaRecord | web.Response:
    upload = Upload(live.sitting.id, kind, seq, media_type, client_time, hall.now())
    try:
        stored = await _records(request).store_media(upload, data)
    except StoreError as error:
        return refusal(
            503, "not_stored", f"{kind.value} {seq} was not stored ({error}); send it again"
        )
    if stored.arrival is Arrival.CONFLICT:
        await hall.note(
            live,
            Finding("media-duplicate", f"{kind.value} {seq} sent again with other bytes", 2),
            "server",
        )
        return refusal(409, "duplicate_chunk", f"{kind.value} {seq} is stored with other bytes")
    if stored.arrival is Arrival.GAP:
        await hall.note(
            live,
            Finding("media-gap", f"{kind.value} {seq} arrived; earlier ones are missing", 2),
            "server",
        )
    elif stored.arrival is Arrival.LATE:
        await hall.note(
            live, Finding("media-out-of-order", f"{kind.value} {seq} arrived late", 1), "server"
        )
    await hall.media_arrived(live, snapshot=kind is Kind.SNAPSHOT)
    return stored.record


def _records(request: web.Request) -> ProctoringRecords:
    records = request.app[keys.HALL].records
    assert records is not None
    return records


def _refused(error: RequestError) -> web.Response:
    status = 401 if isinstance(error, AuthError) else 403 if error.close_code == 4403 else 400
    return refusal(status, error.code, error.message)
