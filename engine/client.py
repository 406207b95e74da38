"""A Python candidate client on the `websockets` library: for simulation, benchmarks and tests.

It speaks docs/protocol.md: sign in over HTTP, hello on the socket, then start, answer, submit.
Every answer keeps its sequence number until acknowledged, so after a dropped connection `resume`
sends the unacknowledged ones again under the same numbers and the server takes each exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import websockets
from websockets.asyncio.client import ClientConnection, connect

from engine import wire
from engine.countdown import Countdown
from engine.exceptions import ExamhallError, ProtocolError, RequestError


class ClientError(ExamhallError):
    """The server refused something; `code` is its error code, `close_code` the socket's."""

    def __init__(self, code: str, message: str, close_code: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.close_code = close_code


def sign_in_sync(base_url: str, code: str, timeout_s: float = 30.0) -> dict[str, Any]:
    """POST /api/v1/signin; returns the JSON body (token, candidate, exam)."""
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/api/v1/signin",
        data=json.dumps({"code": code}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as error:
        body = json.load(error)
        raise ClientError(body.get("error", "http"), body.get("message", str(error))) from None


async def sign_in(base_url: str, code: str) -> dict[str, Any]:
    return await asyncio.to_thread(sign_in_sync, base_url, code)


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + (
        "/ws/candidate"
    )


@dataclass
class SittingView:
    """What the client knows of its sitting: the latest welcome, form, clock and result."""

    welcome: wire.Welcome | None = None
    form: wire.FormOut | None = None
    clock: wire.Clock | None = None
    countdown: Countdown = field(default_factory=Countdown)
    closed: wire.Closed | None = None
    status: wire.Status | None = None
    warnings: list[wire.TimeWarning] = field(default_factory=list)
    notices: list[wire.Notice] = field(default_factory=list)
    errors: list[wire.Error] = field(default_factory=list)

    def remaining_s(self, now: float | None = None) -> float | None:
        """Remaining time as this client shows it (engine/countdown.py): the server's clock
        counted down locally, never raised by a figure that arrived late."""
        return self.countdown.shown_s(now)


class CandidateClient:
    """One candidate's connection to one part."""

    def __init__(self, base_url: str, token: str, part: str, *, open_timeout_s: float = 30) -> None:
        self.base_url = base_url
        self.token = token
        self.part = part
        self.open_timeout_s = open_timeout_s
        self.view = SittingView()
        self.next_seq = 1
        self.unacked: dict[int, wire.Answer] = {}
        self.acked: dict[int, wire.Answer] = {}
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ack_waiters: dict[int, asyncio.Future[wire.Ack]] = {}
        self._pong_waiters: dict[int, asyncio.Future[wire.Pong]] = {}
        self._ping_ids = itertools.count(1)
        self._events: asyncio.Queue[wire.Message] = asyncio.Queue()
        self.close_code: int | None = None
        self.on_message: Callable[[wire.Message], None] | None = None

    # -- connection --------------------------------------------------------------------------

    async def connect(self) -> wire.Welcome:
        """Open the socket and say hello; resends unacknowledged answers on a resume."""
        self._ws = await connect(
            ws_url(self.base_url),
            open_timeout=self.open_timeout_s,
            compression=None,
            max_size=8 * 1024 * 1024,
        )
        self.close_code = None
        self._events = asyncio.Queue()  # next_message waits for what this connection brings
        await self._send(
            wire.Hello(wire.PROTOCOL_VERSION, self.token, self.part, "examhall.client")
        )
        first = wire.parse(await self._ws.recv(decode=False), max_bytes=wire.MAX_SERVER_FRAME_BYTES)
        if isinstance(first, wire.Error):
            await self._wait_closed()
            raise ClientError(first.code, first.message, first.close_code)
        if isinstance(first, wire.Closed):
            self.view.closed = first
            await self._wait_closed()
            raise ClientError("sitting_closed", first.reason, self.close_code)
        assert isinstance(first, wire.Welcome), first
        self.view.welcome = first
        self.view.countdown.update(first.remaining_ms, first.state, first.deadline)
        self.next_seq = max(self.next_seq, first.next_seq)
        self._reader = asyncio.create_task(self._read())
        self._settle_durable(first)
        loop = asyncio.get_running_loop()
        for seq in sorted(self.unacked):
            self._ack_waiters.setdefault(seq, loop.create_future())
            await self._send(self.unacked[seq])
        return first

    def _settle_durable(self, welcome: wire.Welcome) -> None:
        """Answers below next_seq are on the server: acknowledge them locally."""
        for seq in [s for s in self.unacked if s < welcome.next_seq]:
            self.acked[seq] = self.unacked.pop(seq)
            waiter = self._ack_waiters.pop(seq, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(wire.Ack(seq, self.acked[seq].item))

    async def resume(self) -> wire.Welcome:
        await self.drop()
        return await self.connect()

    async def drop(self) -> None:
        """Close the socket without a goodbye, as a lost connection would."""
        if self._ws is not None:
            await self._ws.close()
            await self._wait_closed()

    async def _wait_closed(self) -> None:
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        if self._ws is not None:
            await self._ws.wait_closed()
            self.close_code = self._ws.close_code

    async def _send(self, msg: wire.Message) -> None:
        if self._ws is None:
            raise ClientError("not_connected", "connect first")
        await self._ws.send(wire.serialize(msg))

    async def send_raw(self, frame: bytes | str) -> None:
        """For tests of bad input: send exactly these bytes."""
        assert self._ws is not None
        await self._ws.send(frame)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                if isinstance(frame, str):
                    continue
                self._dispatch(wire.parse(frame, max_bytes=wire.MAX_SERVER_FRAME_BYTES))
        except websockets.ConnectionClosed:
            pass
        except ProtocolError as error:
            self.view.errors.append(wire.Error(error.code, f"from the server: {error.message}"))
            await self._ws.close(wire.CloseCode.PROTOCOL, "bad frame from the server")
        finally:
            self.close_code = self._ws.close_code
            failure = ClientError("disconnected", "the connection closed", self.close_code)
            for waiters in (self._ack_waiters, self._pong_waiters):
                for waiter in waiters.values():
                    if not waiter.done():
                        waiter.set_exception(failure)
                waiters.clear()

    def _dispatch(self, msg: wire.Message) -> None:
        view = self.view
        if isinstance(msg, wire.Ack):
            sent = self.unacked.pop(msg.seq, None)
            if sent is not None:
                self.acked[msg.seq] = sent
            waiter = self._ack_waiters.pop(msg.seq, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(msg)
        elif isinstance(msg, wire.Pong):
            if msg.client_time is not None and view.clock is not None:
                round_trip_s = max(0.0, time.time() - msg.client_time)
                view.countdown.offer(msg.remaining_ms, view.clock.state, age_s=round_trip_s / 2)
            pong_waiter = self._pong_waiters.pop(msg.id, None)
            if pong_waiter is not None and not pong_waiter.done():
                pong_waiter.set_result(msg)
        elif isinstance(msg, wire.Error):
            view.errors.append(msg)
            if msg.seq is not None:
                self.unacked.pop(msg.seq, None)
                waiter = self._ack_waiters.pop(msg.seq, None)
                if waiter is not None and not waiter.done():
                    waiter.set_exception(ClientError(msg.code, msg.message, msg.close_code))
        elif isinstance(msg, wire.FormOut):
            view.form = msg
        elif isinstance(msg, wire.Clock):
            view.clock = msg
            view.countdown.update(msg.remaining_ms, msg.state, msg.deadline)
        elif isinstance(msg, wire.TimeWarning):
            view.warnings.append(msg)
            view.countdown.offer(msg.remaining_ms, "running")
        elif isinstance(msg, wire.Notice):
            view.notices.append(msg)
        elif isinstance(msg, wire.Closed):
            view.closed = msg
        elif isinstance(msg, wire.Status):
            view.status = msg
        if self.on_message is not None:
            self.on_message(msg)
        self._events.put_nowait(msg)

    async def next_message(self, kind: type[wire.Message], timeout_s: float = 10) -> wire.Message:
        """Wait for the next message of this type (earlier ones of other types are skipped)."""
        async with asyncio.timeout(timeout_s):
            while True:
                msg = await self._events.get()
                if isinstance(msg, kind):
                    return msg

    # -- the candidate's moves ---------------------------------------------------------------

    async def wait_admitted(self, timeout_s: float = 60) -> None:
        """Until a proctor has admitted this sitting (exams with proctor admission)."""
        welcome = self.view.welcome
        if welcome is not None and welcome.state != "scheduled":
            return
        async with asyncio.timeout(timeout_s):
            while True:
                status = await self.next_message(wire.Status, timeout_s)
                assert isinstance(status, wire.Status)
                if status.state == "checked-in":
                    return

    async def start(self, language: str) -> wire.FormOut:
        """Start the part; returns the form once it and the first clock have arrived."""
        await self._send(wire.Start(language))
        form = await self.next_message(wire.FormOut)
        await self.next_message(wire.Clock)
        assert isinstance(form, wire.FormOut)
        return form

    async def answer(
        self, item: str, choice: int | None, *, flagged: bool = False, wait: bool = True
    ) -> wire.Ack | None:
        """Send an answer under the next sequence number; with `wait`, until it is durable."""
        msg = wire.Answer(self.next_seq, item, choice, flagged, time.time())
        self.next_seq += 1
        self.unacked[msg.seq] = msg
        waiter: asyncio.Future[wire.Ack] = asyncio.get_running_loop().create_future()
        self._ack_waiters[msg.seq] = waiter
        await self._send(msg)
        if not wait:
            return None
        return await waiter

    async def wait_acked(self, timeout_s: float = 30) -> None:
        """Until every sent answer is acknowledged."""
        pending = [w for w in self._ack_waiters.values() if not w.done()]
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending), timeout_s)

    async def ping(self) -> wire.Pong:
        ping_id = next(self._ping_ids)
        waiter: asyncio.Future[wire.Pong] = asyncio.get_running_loop().create_future()
        self._pong_waiters[ping_id] = waiter
        await self._send(wire.Ping(ping_id, time.time()))
        return await waiter

    async def submit(self, timeout_s: float = 30) -> wire.Closed:
        await self._send(wire.Submit())
        closed = await self.next_message(wire.Closed, timeout_s)
        assert isinstance(closed, wire.Closed)
        await self._wait_closed()
        return closed

    async def wait_closed(self, timeout_s: float = 30) -> wire.Closed:
        """Until the server closes the sitting (expiry, termination)."""
        if self.view.closed is None:
            await self.next_message(wire.Closed, timeout_s)
        await self._wait_closed()
        assert self.view.closed is not None
        return self.view.closed

    async def wait_disconnected(self, timeout_s: float = 10) -> None:
        """Until the server closes the socket, for whatever reason."""
        async with asyncio.timeout(timeout_s):
            await self._wait_closed()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        await self._wait_closed()


def fatal_error(client: CandidateClient) -> RequestError | None:
    """The last fatal error the server sent, as an exception, if any."""
    for error in reversed(client.view.errors):
        if error.fatal:
            return RequestError(error.message, code=error.code)
    return None


def staff_sign_in_sync(
    base_url: str, login: str, password: str, exam: str | None = None
) -> dict[str, Any]:
    """POST /api/v1/staff/signin; returns the JSON body (token, role, sites)."""
    body: dict[str, Any] = {"login": login, "password": password}
    if exam is not None:
        body["exam"] = exam
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/api/v1/staff/signin",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as error:
        reply = json.load(error)
        raise ClientError(reply.get("error", "http"), reply.get("message", str(error))) from None


async def upload_media(
    session: aiohttp.ClientSession,
    base_url: str,
    token: str,
    part: str,
    data: bytes,
    media_type: str,
    *,
    seq: int | None = None,
    busy_retries: int = 5,
) -> dict[str, Any]:
    """POST a media chunk (with `seq`) or a camera still (without); returns the server's record.

    A `503 busy` is sent again after its `Retry-After`, as the candidate's page does, up to
    `busy_retries` times."""
    kind = "chunk" if seq is not None else "snapshot"
    url = f"{base_url.rstrip('/')}/api/v1/media/{part}/{kind}"
    params = {"seq": str(seq), "client_time": str(time.time())} if seq is not None else {}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": media_type}
    attempts = 0
    while True:
        async with session.post(url, data=data, params=params, headers=headers) as response:
            reply = dict(await response.json())
            if response.status == 200:
                return reply
            wait_s = float(response.headers.get("Retry-After", "5"))
        attempts += 1
        if reply.get("error") != "busy" or attempts > busy_retries:
            raise ClientError(reply.get("error", str(response.status)), reply.get("message", ""))
        await asyncio.sleep(wait_s)


class MediaSocket:
    """The candidate's media socket (docs/protocol.md 6.4): one upload at a time, each answered
    with `stored`, or refused (`ClientError` with the code); `busy` is sent again after its wait,
    as the page does, up to `busy_retries` times. Levels sent here get no reply; one the server
    cannot read gets an error that closes nothing, kept in `errors`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        part: str,
        *,
        url: str | None = None,
        busy_retries: int = 5,
    ) -> None:
        """`url`: the sign-in's `media_socket` (the server's own `/ws/media` if None)."""
        self.url = url or ws_url(base_url).replace("/ws/candidate", "/ws/media")
        self.token = token
        self.part = part
        self.busy_retries = busy_retries
        self.ready: wire.MediaReady | None = None
        self.errors: list[wire.Error] = []
        """Errors that closed nothing (a levels frame refused), oldest first."""
        self._ws: ClientConnection | None = None
        self._refs = itertools.count(1)

    async def connect(self) -> wire.MediaReady:
        self._ws = await connect(self.url, compression=None, max_size=wire.MAX_SERVER_FRAME_BYTES)
        await self._ws.send(
            wire.serialize(wire.Hello(wire.PROTOCOL_VERSION, self.token, self.part))
        )
        ready = await self.reply()
        if not isinstance(ready, wire.MediaReady):
            raise ClientError("unexpected", f"{ready.TYPE} instead of media-ready")
        self.ready = ready
        return ready

    async def send_chunk(
        self, seq: int, data: bytes, media_type: str, *, client_time: float | None = None
    ) -> wire.Stored:
        chunk = wire.Chunk(
            seq, media_type, data, time.time() if client_time is None else client_time
        )
        return await self._upload(chunk)

    async def send_snapshot(self, data: bytes, media_type: str) -> wire.Stored:
        return await self._upload(wire.Snapshot(media_type, data, next(self._refs)))

    async def send_levels(self, start: float, interval_ms: int, values: list[float]) -> None:
        """Microphone levels for the detectors (docs/protocol.md 6.2), as the page sends them
        while this socket is open; nothing is answered."""
        if self._ws is None or self._ws.close_code == wire.CloseCode.IDLE:
            await self.connect()
        await self.send_raw(wire.serialize(wire.Levels(start, interval_ms, values)))

    async def _upload(self, upload: wire.Chunk | wire.Snapshot) -> wire.Stored:
        if self._ws is None or self._ws.close_code == wire.CloseCode.IDLE:
            await self.connect()  # first use, or closed as quiet: the page opens it again too
        for _ in range(self.busy_retries + 1):
            await self.send_raw(wire.serialize(upload))
            reply = await self.reply()
            while isinstance(reply, wire.Error):  # not fatal (`reply` raises those): levels
                self.errors.append(reply)
                reply = await self.reply()
            if isinstance(reply, wire.Stored):
                return reply
            if not isinstance(reply, wire.Refused):
                raise ClientError("unexpected", f"{reply.TYPE} in reply to an upload")
            if reply.error != "busy":
                raise ClientError(reply.error, reply.message)
            await asyncio.sleep(reply.retry_after or 5)
        raise ClientError("busy", f"still busy after {self.busy_retries} waits")

    async def send_raw(self, frame: bytes | str) -> None:
        """Send exactly these bytes (tests of bad input send broken ones)."""
        if self._ws is None:
            raise ClientError("not_connected", "connect first")
        try:
            await self._ws.send(frame)
        except websockets.ConnectionClosed:
            closed = ClientError("disconnected", "the connection closed", self._ws.close_code)
            raise closed from None

    async def reply(self) -> wire.Message:
        """The next frame from the server; a closed socket raises `ClientError` with its code."""
        assert self._ws is not None
        try:
            frame = await self._ws.recv()
        except websockets.ConnectionClosed:
            raise ClientError(
                "disconnected", "the connection closed", self._ws.close_code
            ) from None
        if isinstance(frame, str):
            raise ClientError("unexpected", "a text frame from the server")
        msg = wire.parse(frame, max_bytes=wire.MAX_SERVER_FRAME_BYTES)
        if isinstance(msg, wire.Error) and msg.fatal:
            await self._ws.wait_closed()
            raise ClientError(msg.code, msg.message, self._ws.close_code)
        return msg

    @property
    def close_code(self) -> int | None:
        return None if self._ws is None else self._ws.close_code

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()


class ProctorClient:
    """A proctor's (or observer's) connection: the site feed, actions and sitting details."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self.tiles: dict[str, wire.Tile] = {}
        self.irregularities: list[wire.Irregularity] = []
        self.feeds = 0
        self.close_code: int | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiters: dict[int, asyncio.Future[wire.Message]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()

    async def connect(self, site: str | None = None) -> None:
        url = ws_url(self.base_url).replace("/ws/candidate", "/ws/proctor")
        self._ws = await connect(url, compression=None, max_size=wire.MAX_SERVER_FRAME_BYTES)
        await self._ws.send(wire.serialize(wire.Watch(wire.PROTOCOL_VERSION, self.token, site)))
        first = wire.parse(await self._ws.recv(decode=False), max_bytes=wire.MAX_SERVER_FRAME_BYTES)
        if isinstance(first, wire.Error):
            await self._ws.wait_closed()
            self.close_code = self._ws.close_code
            raise ClientError(first.code, first.message, first.close_code)
        self._dispatch(first)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                if isinstance(frame, bytes):
                    self._dispatch(wire.parse(frame, max_bytes=wire.MAX_SERVER_FRAME_BYTES))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self._ws.close_code
            for waiter in self._waiters.values():
                if not waiter.done():
                    waiter.set_exception(ClientError("disconnected", "the connection closed"))

    def _dispatch(self, msg: wire.Message) -> None:
        if isinstance(msg, wire.Feed):
            self.feeds += 1
            for tile in msg.tiles:
                self.tiles[tile.sitting] = tile
            self._changed.set()
        elif isinstance(msg, wire.Irregularity):
            self.irregularities.append(msg)
            self._changed.set()
        elif isinstance(msg, wire.ActionResult | wire.DetailReply | wire.Pong):
            waiter = self._waiters.pop(msg.id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(msg)

    async def changed(self, timeout_s: float = 10) -> None:
        """Until the next feed or irregularity."""
        self._changed.clear()
        await asyncio.wait_for(self._changed.wait(), timeout_s)

    async def wait_for(
        self, predicate: Callable[[ProctorClient], bool], timeout_s: float = 10
    ) -> None:
        async with asyncio.timeout(timeout_s):
            while not predicate(self):
                await self.changed(timeout_s)

    async def _request(self, msg_id: int, msg: wire.Message) -> wire.Message:
        assert self._ws is not None
        waiter: asyncio.Future[wire.Message] = asyncio.get_running_loop().create_future()
        self._waiters[msg_id] = waiter
        await self._ws.send(wire.serialize(msg))
        return await asyncio.wait_for(waiter, 30)

    async def act(self, sitting: str, kind: str, **fields: Any) -> wire.ActionResult:
        msg_id = next(self._ids)
        reply = await self._request(msg_id, wire.Action(msg_id, sitting, kind, **fields))
        assert isinstance(reply, wire.ActionResult)
        return reply

    async def detail(self, sitting: str) -> wire.DetailReply | wire.ActionResult:
        msg_id = next(self._ids)
        reply = await self._request(msg_id, wire.Detail(msg_id, sitting))
        assert isinstance(reply, wire.DetailReply | wire.ActionResult)
        return reply

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
