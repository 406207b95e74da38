"""The proctor's websocket: watch a site's feed, act on its sittings, read a sitting's record.

Proctors, observers and admins share it; what each may do is checked on every message against
the staff record behind the token, never against what the client claims.
"""

from __future__ import annotations

import logging

from aiohttp import web

from engine import wire
from engine.exceptions import AuthError, ExamhallError, ForbiddenError, ProtocolError, RequestError
from engine.model import Role, Staff
from engine.server import keys
from engine.server.board import Watcher
from engine.server.candidate_socket import read_message, refuse
from engine.server.hall import Hall
from engine.server.proctoring import act, check_site

log = logging.getLogger("examhall.proctor")

STAFF_ROLES = tuple(role.value for role in Role)


def staff_for(hall: Hall, token: str) -> Staff:
    claims = hall.tokens.verify(token, role=STAFF_ROLES)
    runtime = hall.exams.get(claims.exam_id)
    staff = runtime.staff.get(claims.subject) if runtime else None
    if staff is None or staff.role.value != claims.role:
        raise AuthError("the token names no staff member of a running exam", code="bad_token")
    return staff


async def proctor_socket(request: web.Request) -> web.WebSocketResponse:
    config = request.app[keys.CONFIG]
    hall = request.app[keys.HALL]
    ws = web.WebSocketResponse(
        max_msg_size=config.max_frame_bytes, heartbeat=config.heartbeat_s, compress=False
    )
    await ws.prepare(request)
    request.app[keys.SOCKETS].add(ws)
    watcher: Watcher | None = None
    try:
        try:
            first = await ws.receive(timeout=config.hello_timeout_s)
        except TimeoutError:
            raise ProtocolError(
                "no watch frame within the time allowed", code="hello_timeout"
            ) from None
        watch = read_message(first, wire.STAFF_MESSAGES)
        if not isinstance(watch, wire.Watch):
            raise ProtocolError("the first frame must be watch", code="hello_first")
        staff = staff_for(hall, watch.token)
        sites = _sites(staff, watch.site)
        keys_ = [(staff.exam_id, site) for site in sites]

        async def send(frame: bytes) -> None:
            await ws.send_bytes(frame)

        watcher = Watcher(send, lambda: [hall.board.full_frame(key) for key in keys_])
        for key in keys_:
            await ws.send_bytes(hall.board.full_frame(key))
        hall.board.watch(keys_, watcher)
        watcher.start()
        await _serve(ws, hall, staff)
    except RequestError as error:
        await refuse(ws, error)
    except ExamhallError:
        log.exception("internal error on a proctor socket")
        await refuse(
            ws,
            RequestError("the server failed", code="server_error"),
            close_code=wire.CloseCode.SERVER_ERROR,
        )
    finally:
        if watcher is not None:
            hall.board.unwatch(watcher)
            await watcher.stop()
        if not ws.closed:
            await ws.close()
    return ws


def _sites(staff: Staff, wanted: str | None) -> list[str]:
    if wanted is None:
        return list(staff.sites)
    if wanted not in staff.sites:
        raise ForbiddenError(f"you do not watch site {wanted!r}", code="forbidden")
    return [wanted]


async def _serve(ws: web.WebSocketResponse, hall: Hall, staff: Staff) -> None:
    while not ws.closed:
        msg = read_message(await ws.receive(), wire.STAFF_MESSAGES)
        if msg is None:
            return
        reply: wire.Message
        if isinstance(msg, wire.Action):
            try:
                access_code = await act(hall, staff, msg)
                reply = wire.ActionResult(msg.id, True, access_code=access_code or "")
            except RequestError as refusal:
                reply = wire.ActionResult(msg.id, False, refusal.code, refusal.message)
        elif isinstance(msg, wire.Detail):
            try:
                check_site(staff, hall, msg.sitting)
                reply = await _detail(hall, msg)
            except RequestError as refusal:
                reply = wire.ActionResult(msg.id, False, refusal.code, refusal.message)
        elif isinstance(msg, wire.Ping):
            reply = wire.Pong(msg.id, msg.client_time, hall.now(), 0)
        else:
            raise ProtocolError("watch was already received on this connection", code="hello_twice")
        await ws.send_bytes(wire.serialize(reply))


async def _detail(hall: Hall, msg: wire.Detail) -> wire.DetailReply:
    events = await hall.store.events_of(msg.sitting)
    media = await hall.media_records(msg.sitting)
    return wire.DetailReply(msg.id, msg.sitting, events, [record.to_json() for record in media])
