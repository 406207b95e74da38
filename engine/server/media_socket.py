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

The socket is the same wherever it is served; what takes the uploads is a `MediaDesk`: the
hall itself (`HallDesk`, the socket served by the serving process) or the media process
(engine/server/media_process.py), which writes the bytes itself and asks the serving process
only to check and record them.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from typing import Protocol

from aiohttp import WSMessage, web

from engine import wire
from engine.exceptions import ExamhallError, ProtocolError, RequestError
from engine.fixation import MAX_CHUNK_BYTES, MAX_SNAPSHOT_BYTES, base_type
from engine.server import keys
from engine.server.candidate_socket import read_message, refuse
from engine.server.hall import Hall, LiveSitting
from engine.server.quiet_sockets import QuietSockets
from engine.server.uploads import Refusal, refusal_if_closed, take_chunk, take_snapshot

log = logging.getLogger("examhall.media")

Upload = wire.Chunk | wire.Snapshot
Gone = Callable[[], bool]


class MediaDesk(Protocol):
    """Whatever takes a media socket's uploads. A `RequestError` it raises closes the socket
    with the error's close code (a token no longer valid 4401, a closed sitting 4410)."""

    async def greet(self, hello: wire.Hello) -> object:
        """Check the hello's token and sitting; a handle for the uploads that follow."""
        ...

    async def take(self, handle: object, upload: Upload, gone: Gone) -> bytes | None:
        """The reply frame to one upload, or None if the page closed its socket (`gone()`)
        while the upload waited its turn."""
        ...

    async def levels(self, handle: object, levels: wire.Levels) -> None:
        """Loudness from the page's microphone for the detectors; a finding is noted on the
        sitting. A frame the detectors cannot read raises `CandidateError` (the socket goes on).
        """
        ...

    def leave(self, handle: object) -> None:
        """The socket greeted with `handle` is closed."""
        ...


def fatal(code: str, message: str, close_code: int) -> RequestError:
    """An error that closes the socket with `close_code`."""
    error = RequestError(message, code=code)
    error.close_code = close_code
    return error


async def serve_media_socket(
    request: web.Request,
    desk: MediaDesk,
    quiet: QuietSockets,
    hello_timeout_s: float,
    sockets: weakref.WeakSet[web.WebSocketResponse],
) -> web.WebSocketResponse:
    """Serve one media socket to its end; it is in `sockets` while open (closed at shutdown)."""
    # No heartbeat: a ping to every open media socket would cost about a third of the chunks'
    # own frames; a socket that goes quiet is closed as idle instead.
    ws = web.WebSocketResponse(max_msg_size=wire.MAX_MEDIA_FRAME_BYTES, compress=False)
    await ws.prepare(request)
    sockets.add(ws)
    quiet.heard(ws)
    handle: object = None
    try:
        hello = await _hello(ws, hello_timeout_s)
        if hello is not None:
            handle = await desk.greet(hello)
            await ws.send_bytes(
                wire.serialize(wire.MediaReady(MAX_CHUNK_BYTES, MAX_SNAPSHOT_BYTES))
            )
            await _serve(ws, desk, handle, quiet, _gone(request, ws))
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
        sockets.discard(ws)
        if handle is not None:
            desk.leave(handle)
        if not ws.closed:
            await ws.close()
    return ws


async def _hello(ws: web.WebSocketResponse, timeout_s: float) -> wire.Hello | None:
    """The hello frame, checked for its version, or None once the socket is refused."""
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
    return hello


def _gone(request: web.Request, ws: web.WebSocketResponse) -> Gone:
    """Whether the page closed the socket, known without reading from it (a handler that does
    not read learns of a close only from its transport)."""

    def gone() -> bool:
        transport = request.transport
        return ws.closed or transport is None or transport.is_closing()

    return gone


async def _serve(
    ws: web.WebSocketResponse, desk: MediaDesk, handle: object, quiet: QuietSockets, gone: Gone
) -> None:
    while not ws.closed:
        frame = await ws.receive()
        quiet.heard(ws)
        upload = _read(frame)
        if upload is None:
            return
        if isinstance(upload, wire.Hello):
            raise ProtocolError("hello was already received on this connection", code="hello_twice")
        if isinstance(upload, wire.Levels):
            await _levels(ws, desk, handle, upload)
            continue
        if not isinstance(upload, wire.Chunk | wire.Snapshot):
            raise ProtocolError(f"{upload.TYPE} is not sent here", code="unknown_type")
        quiet.forget(ws)  # held while the node is behind: waiting, not quiet
        reply = await desk.take(handle, upload, gone)
        quiet.heard(ws)
        if reply is not None:
            await ws.send_bytes(reply)


async def _levels(
    ws: web.WebSocketResponse, desk: MediaDesk, handle: object, levels: wire.Levels
) -> None:
    """Levels get no reply; a frame the detectors cannot read gets an error that closes
    nothing (the page's upload in flight is still answered after it)."""
    try:
        await desk.levels(handle, levels)
    except RequestError as error:
        if error.close_code is not None:
            raise
        await ws.send_bytes(wire.serialize(wire.Error(error.code, error.message)))


def _read(frame: WSMessage) -> wire.Message | None:
    return read_message(frame, allowed=wire.MEDIA_MESSAGES, max_bytes=wire.MAX_MEDIA_FRAME_BYTES)


def refused_frame(upload: Upload, refusal: Refusal) -> bytes:
    seq, ref = (upload.seq, None) if isinstance(upload, wire.Chunk) else (None, upload.ref)
    kind = "chunk" if isinstance(upload, wire.Chunk) else "snapshot"
    return wire.serialize(wire.Refused(kind, refusal.code, refusal.message, seq, ref))


def stored_frame(upload: Upload, seq: int, sha256: str, size: int, server_time: float) -> bytes:
    kind, ref = ("chunk", None) if isinstance(upload, wire.Chunk) else ("snapshot", upload.ref)
    return wire.serialize(wire.Stored(kind, seq, sha256, size, server_time, ref))


async def open_sitting(hall: Hall, token: str, part: str) -> LiveSitting:
    """The token's sitting of `part`, checked as every upload is: a token expired or replaced
    since raises `AuthError` (4401), a closed sitting `closed_error` (4410)."""
    claims = hall.tokens.verify(token, role="candidate")
    live = await hall.sitting_for(claims, part)
    if (closed := refusal_if_closed(live)) is not None:
        raise closed_error(closed)
    return live


def closed_error(refusal: Refusal) -> RequestError:
    """A closed sitting takes no more media: say so and close (4410)."""
    return fatal(refusal.code, refusal.message, wire.CloseCode.GONE)


class HallDesk:
    """Uploads taken by the serving process itself: checked, stored and recorded here."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def greet(self, hello: wire.Hello) -> object:
        await open_sitting(self.app[keys.HALL], hello.token, hello.part)
        return hello

    async def levels(self, handle: object, levels: wire.Levels) -> None:
        assert isinstance(handle, wire.Hello)
        hall = self.app[keys.HALL]
        await hall.levels(await open_sitting(hall, handle.token, handle.part), levels)

    async def take(self, handle: object, upload: Upload, gone: Gone) -> bytes | None:
        assert isinstance(handle, wire.Hello)
        # As an HTTP upload would: a token expired or replaced since is refused (4401), and
        # the sitting is the hall's own now (it reloads one it had to forget).
        live = await open_sitting(self.app[keys.HALL], handle.token, handle.part)
        self.app[keys.HALL].media_heard(live)
        uploads = self.app[keys.UPLOADS]
        # A node that is behind holds the upload; its page waits for the reply (no `busy` here).
        await self.app[keys.UPLOAD_GATE].take_turn(uploads, self.app[keys.LOOP_LAG])
        if gone():
            return None
        hall: Hall = self.app[keys.HALL]
        media_type = base_type(upload.type)
        with uploads.one():
            if isinstance(upload, wire.Chunk):
                taken = await take_chunk(
                    hall, live, upload.seq, media_type, upload.data, upload.client_time
                )
            else:
                taken = await take_snapshot(hall, live, media_type, upload.data)
        if isinstance(taken, Refusal):
            return refused_frame(upload, taken)
        return stored_frame(upload, taken.seq, taken.sha256, taken.size, taken.server_time)

    def leave(self, handle: object) -> None:
        pass


async def media_socket(request: web.Request) -> web.WebSocketResponse:
    """/ws/media on the serving process."""
    app = request.app
    config = app[keys.CONFIG]
    return await serve_media_socket(
        request, HallDesk(app), app[keys.QUIET_MEDIA], config.hello_timeout_s, app[keys.SOCKETS]
    )
