"""The media socket: the candidate page's recorder chunks and camera stills, one frame each.

One HTTP request per chunk cost the event loop about 0.2 ms of parsing, routing and replying,
which at 10,000 sittings (1,000 chunks a second) was the loop's largest share after the answers.
A frame on a socket kept open costs a fraction of that. It is a socket of its own, not the
candidate's: a 350 KB chunk queued on a slow uplink must never hold an answer back.

Hello first (the candidate socket's, with the same token and part); then `chunk` and `snapshot`
frames, taken one at a time in the order sent, each answered with `stored` or `refused`; while
the node is behind (engine/server/upload_gate.py) an upload waits for its turn. A refusal of
the upload keeps the socket open; a bad frame, a token no longer valid or a closed sitting
closes it with the code `wire.CloseCode` names. Quiet for a minute
(`ServerConfig.media_quiet_s`, engine/server/quiet_sockets.py), it is closed (4411): the page
opens it again when it next has something to send.
"""

from __future__ import annotations

import logging

from aiohttp import WSMessage, web

from engine import wire
from engine.exceptions import ExamhallError, ProtocolError, RequestError
from engine.fixation import MAX_CHUNK_BYTES, MAX_SNAPSHOT_BYTES, base_type
from engine.server import keys
from engine.server.candidate_socket import read_message, refuse
from engine.server.hall import Hall, LiveSitting
from engine.server.uploads import Refusal, refusal_if_closed, take_chunk, take_snapshot

log = logging.getLogger("examhall.media")


async def media_socket(request: web.Request) -> web.WebSocketResponse:
    config = request.app[keys.CONFIG]
    hall = request.app[keys.HALL]
    # No heartbeat: a ping to every open media socket would cost about a third of the chunks'
    # own frames; a socket that goes quiet is closed as idle instead.
    ws = web.WebSocketResponse(max_msg_size=wire.MAX_MEDIA_FRAME_BYTES, compress=False)
    await ws.prepare(request)
    request.app[keys.SOCKETS].add(ws)
    quiet = request.app[keys.QUIET_MEDIA]
    quiet.heard(ws)
    try:
        greeted = await _greet(ws, hall, config.hello_timeout_s)
        if greeted is not None:
            await _serve(ws, request.app, hall, greeted)
    except RequestError as error:
        await refuse(ws, error)
    except ExamhallError:
        log.exception("internal error on a media socket")
        await refuse(
            ws,
            RequestError("the server failed; send again what was not stored", code="server_error"),
            close_code=wire.CloseCode.SERVER_ERROR,
        )
    finally:
        quiet.forget(ws)
        request.app[keys.SOCKETS].discard(ws)
        if not ws.closed:
            await ws.close()
    return ws


async def _greet(ws: web.WebSocketResponse, hall: Hall, timeout_s: float) -> wire.Hello | None:
    """A valid hello for a sitting still open, or None once the socket is refused."""
    try:
        frame = await ws.receive(timeout=timeout_s)
    except TimeoutError:
        error = ProtocolError("no hello within the time allowed", code="hello_timeout")
        await refuse(ws, error, close_code=wire.CloseCode.HELLO_TIMEOUT)
        return None
    hello = _read(frame)
    if hello is None:
        return None
    if not isinstance(hello, wire.Hello):
        raise ProtocolError(f"the first frame must be hello, not {hello.TYPE}", code="hello_first")
    if hello.v != wire.PROTOCOL_VERSION:
        error = ProtocolError(
            f"protocol version {hello.v} is not supported; this server speaks "
            f"{wire.PROTOCOL_VERSION}",
            code="unsupported_version",
        )
        await refuse(ws, error, close_code=wire.CloseCode.UNSUPPORTED)
        return None
    claims = hall.tokens.verify(hello.token, role="candidate")
    live = await hall.sitting_for(claims, hello.part)
    if await _refused_as_closed(ws, live):
        return None
    await ws.send_bytes(
        wire.serialize(wire.MediaReady(MAX_CHUNK_BYTES, MAX_SNAPSHOT_BYTES)),
    )
    return hello


async def _serve(
    ws: web.WebSocketResponse, app: web.Application, hall: Hall, hello: wire.Hello
) -> None:
    quiet = app[keys.QUIET_MEDIA]
    while not ws.closed:
        frame = await ws.receive()
        quiet.heard(ws)
        upload = _read(frame)
        if upload is None:
            return
        if isinstance(upload, wire.Hello):
            raise ProtocolError("hello was already received on this connection", code="hello_twice")
        # As an HTTP upload would: a token expired or replaced since is refused (4401), and
        # the sitting is the hall's own now (it reloads one it had to forget).
        claims = hall.tokens.verify(hello.token, role="candidate")
        live = await hall.sitting_for(claims, hello.part)
        if await _refused_as_closed(ws, live):
            return
        if not isinstance(upload, wire.Chunk | wire.Snapshot):
            raise ProtocolError(f"{upload.TYPE} is not sent here", code="unknown_type")
        quiet.forget(ws)  # held while the node is behind: waiting, not quiet
        reply = await _take(ws, app, hall, live, upload)
        quiet.heard(ws)
        if reply is not None:
            await ws.send_bytes(reply)


async def _take(
    ws: web.WebSocketResponse,
    app: web.Application,
    hall: Hall,
    live: LiveSitting,
    upload: wire.Chunk | wire.Snapshot,
) -> bytes | None:
    """The reply frame to one upload, stored or refused, once the node has room for it; None
    if the page gave up waiting and closed the socket (it sends the upload again on a new one)."""
    kind, seq, ref = (
        ("chunk", upload.seq, None)
        if isinstance(upload, wire.Chunk)
        else ("snapshot", None, upload.ref)
    )
    uploads = app[keys.UPLOADS]
    # A node that is behind holds the upload; its page waits for the reply (no `busy` here).
    await app[keys.UPLOAD_GATE].take_turn(uploads, app[keys.LOOP_LAG])
    if ws.closed:
        return None
    media_type = base_type(upload.type)
    with uploads.one():
        if isinstance(upload, wire.Chunk):
            taken = await take_chunk(
                hall, live, upload.seq, media_type, upload.data, upload.client_time
            )
        else:
            taken = await take_snapshot(hall, live, media_type, upload.data)
    if isinstance(taken, Refusal):
        return wire.serialize(wire.Refused(kind, taken.code, taken.message, seq, ref))
    stored = wire.Stored(kind, taken.seq, taken.sha256, taken.size, taken.server_time, ref)
    return wire.serialize(stored)


def _read(frame: WSMessage) -> wire.Message | None:
    return read_message(frame, allowed=wire.MEDIA_MESSAGES, max_bytes=wire.MAX_MEDIA_FRAME_BYTES)


async def _refused_as_closed(ws: web.WebSocketResponse, live: LiveSitting) -> bool:
    """A closed sitting takes no more media: say so and close (4410)."""
    closed = refusal_if_closed(live)
    if closed is None:
        return False
    error = RequestError(closed.message, code=closed.code)
    await refuse(ws, error, close_code=wire.CloseCode.GONE)
    return True
