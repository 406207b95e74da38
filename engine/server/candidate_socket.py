"""The candidate's websocket: hello, then start / answer / submit / ping until the sitting closes.

This handler only moves bytes: it parses frames with `engine.wire`, hands each message to the
hall and turns refusals into error frames. A refusal of the candidate's own making keeps the socket
open; a broken frame or a bad token closes it with the code `wire.CloseCode` names.
"""

from __future__ import annotations

import contextlib
import logging

from aiohttp import WSMessage, WSMsgType, web

from engine import wire
from engine.exceptions import ExamhallError, ProtocolError, RequestError
from engine.server import keys
from engine.server.hall import Hall, LiveSitting, SittingClosed

log = logging.getLogger("examhall.socket")


class AiohttpLink:
    """The hall's view of one aiohttp websocket."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def send(self, frame: bytes) -> None:
        if not self.ws.closed:
            await self.ws.send_bytes(frame)

    async def close(self, code: int, message: str) -> None:
        await self.ws.close(code=code, message=message.encode()[:120])


async def candidate_socket(request: web.Request) -> web.WebSocketResponse:
    config = request.app[keys.CONFIG]
    hall = request.app[keys.HALL]
    ws = web.WebSocketResponse(
        max_msg_size=config.max_frame_bytes, heartbeat=config.heartbeat_s, compress=False
    )
    await ws.prepare(request)
    request.app[keys.SOCKETS].add(ws)
    link = AiohttpLink(ws)
    live: LiveSitting | None = None
    try:
        live = await _greet(ws, hall, link, config.hello_timeout_s)
        if live is not None:
            await _serve(ws, hall, live, link)
    except RequestError as error:
        await refuse(ws, error)
    except SittingClosed as closed:
        await ws.send_bytes(wire.serialize(closed.closed))
        await ws.close(code=wire.CloseCode.GONE, message=b"sitting closed")
    except ExamhallError:
        log.exception("internal error on a candidate socket")
        await _refuse_internal(ws)
    finally:
        if live is not None:
            hall.leave(live, link)
        if not ws.closed:
            await ws.close()
    return ws


async def _greet(
    ws: web.WebSocketResponse, hall: Hall, link: AiohttpLink, timeout_s: float
) -> LiveSitting | None:
    try:
        frame = await ws.receive(timeout=timeout_s)
    except TimeoutError:
        await refuse(
            ws,
            ProtocolError("no hello within the time allowed", code="hello_timeout"),
            close_code=wire.CloseCode.HELLO_TIMEOUT,
        )
        return None
    hello = read_message(frame)
    if hello is None:
        return None
    if not isinstance(hello, wire.Hello):
        raise ProtocolError(f"the first frame must be hello, not {hello.TYPE}", code="hello_first")
    if hello.v != wire.PROTOCOL_VERSION:
        await refuse(
            ws,
            ProtocolError(
                f"protocol version {hello.v} is not supported; this server speaks "
                f"{wire.PROTOCOL_VERSION}",
                code="unsupported_version",
            ),
            close_code=wire.CloseCode.UNSUPPORTED,
        )
        return None
    claims = hall.tokens.verify(hello.token, role="candidate")
    live = await hall.enter(claims, hello.part, link)
    await ws.send_bytes(wire.serialize(hall.welcome(live)))
    if live.sitting.snapshot.language is not None:
        await ws.send_bytes(hall.form_frame(live))
        await ws.send_bytes(wire.serialize(hall.clock_message(live)))
    return live


async def _serve(
    ws: web.WebSocketResponse, hall: Hall, live: LiveSitting, link: AiohttpLink
) -> None:
    while not ws.closed:
        frame = await ws.receive()
        msg = read_message(frame)
        if msg is None:
            return
        if live.link is not link:
            return  # superseded while this frame was in flight
        hall.seen(live)
        try:
            await _dispatch(ws, hall, live, msg)
        except RequestError as error:
            if error.close_code is not None:
                raise
            seq = msg.seq if isinstance(msg, wire.Answer) else None
            with contextlib.suppress(ConnectionError):
                await ws.send_bytes(wire.serialize(wire.Error(error.code, error.message, seq)))


async def _dispatch(
    ws: web.WebSocketResponse, hall: Hall, live: LiveSitting, msg: wire.Message
) -> None:
    if isinstance(msg, wire.Answer):
        ack = await hall.answer(live, msg)
        if ack is not None:
            await ws.send_bytes(wire.ack_frame(ack))
    elif isinstance(msg, wire.Ping):
        await ws.send_bytes(wire.serialize(hall.pong(live, msg)))
    elif isinstance(msg, wire.Start):
        await hall.start(live, msg.language)
    elif isinstance(msg, wire.Submit):
        await hall.submit(live)
    elif isinstance(msg, wire.Signal):
        await hall.signal(live, msg)
    elif isinstance(msg, wire.Levels):
        await hall.levels(live, msg)
    elif isinstance(msg, wire.Hello):
        raise ProtocolError("hello was already received on this connection", code="hello_twice")


def read_message(
    frame: WSMessage,
    allowed: frozenset[str] = wire.CLIENT_MESSAGES,
    max_bytes: int = wire.MAX_FRAME_BYTES,
) -> wire.Message | None:
    """The parsed message, or None when the peer closed; raises for anything malformed.

    On an aiohttp ERROR frame (1009 for an oversized frame) aiohttp has already closed the socket.
    """
    if frame.type == WSMsgType.BINARY:
        return wire.parse(frame.data, allowed=allowed, max_bytes=max_bytes)
    if frame.type == WSMsgType.TEXT:
        raise ProtocolError("frames must be binary msgpack, not text", code="text_frame")
    return None


async def refuse(
    ws: web.WebSocketResponse, error: RequestError, *, close_code: int | None = None
) -> None:
    code = close_code or error.close_code or wire.CloseCode.PROTOCOL
    if ws.closed:
        return
    frame = wire.Error(error.code, error.message, fatal=True, close_code=code)
    try:
        await ws.send_bytes(wire.serialize(frame))
        await ws.close(code=code, message=error.code.encode()[:120])
    except (ConnectionError, RuntimeError):
        pass


async def _refuse_internal(ws: web.WebSocketResponse) -> None:
    await refuse(
        ws,
        RequestError("the server failed; reconnect to resume", code="server_error"),
        close_code=wire.CloseCode.SERVER_ERROR,
    )
