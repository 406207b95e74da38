"""One load-generator process: many candidate connections on the `websockets` library.

The orchestrator (`bench.run`) starts one or more of these, each with a JSON spec naming its mode
and its share of the connections or access codes. A worker prepares (signs in, connects, starts
its sittings), prints ``ready``, waits for a ``go START_AT`` line on stdin, runs its workload until
the deadline in the spec, writes its results as JSON and prints ``done``. Preparation is never
measured; everything measured happens after the common start time.

The generator speaks docs/protocol.md with bare msgpack dicts rather than `engine.wire`'s checked
dataclasses, so its own cost per message stays as low as the ceiling's and the same code drives
the bare echo server and the engine. On exam day each sitting also uploads an A/V chunk every
10 s: on its media socket, as the candidate page does (docs/protocol.md 6.4), or over HTTP
(6.3), on a worker's pool of keep-alive connections with the lean client in `bench/http_post.py`.

    python -m bench.load SPEC.json
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import os
import random
import resource
import sys
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from bench.http_post import KeepAlivePool
from engine.countdown import Countdown
from engine.latency import LoopLag
from engine.server.tuning import new_event_loop

MAX_SERVER_FRAME = 16 * 1024 * 1024
SETUP_CONCURRENCY = 200
"""Connections a worker opens at once while preparing (the storms themselves are not gated)."""
ACK_TIMEOUT_S = 30.0
LEVELS_INTERVAL_MS = 100
LEVELS_PER_FRAME = 50
"""Exam day: every sitting reports 5 s of audio levels every 5 s (docs/protocol.md 6.2)."""
ROOM_LEVEL, ROOM_JITTER = 0.012, 0.002
"""A quiet room's microphone loudness (0..1 RMS) and its spread, as a page reports it."""
SPEECH_SHARE = 0.01


def _level_frames(count: int = 256) -> tuple[list[list[float]], list[list[float]]]:
    """(quiet, speaking) frames of levels: a quiet room, and one with 2.5 s of speech in it."""
    rng = random.Random("levels")

    def quiet() -> list[float]:
        return [
            round(max(0.0, rng.gauss(ROOM_LEVEL, ROOM_JITTER)), 4) for _ in range(LEVELS_PER_FRAME)
        ]

    def speaking() -> list[float]:
        values = quiet()
        first = rng.randrange(LEVELS_PER_FRAME // 2)
        for i in range(first, first + LEVELS_PER_FRAME // 2):
            values[i] = round(rng.uniform(0.15, 0.3), 4)
        return values

    return [quiet() for _ in range(count)], [speaking() for _ in range(count // 8)]


LEVEL_FRAMES = _level_frames()
"""Levels frames with 2.5 s of speech in them: what the talk detector should flag (1 in 100;
uniform noise reaching the detector's floor made it flag one frame in ten)."""
CHUNK_PERIOD_S = 10.0
"""Exam day: every sitting uploads one A/V chunk every 10 s (docs/protocol.md 6.3), as the
candidate page's MediaRecorder does (clients/web/js/media.js CHUNK_EVERY_MS); uploads of one
sitting go one after another. The page's camera stills (one per 20 s) are not sent."""
CHUNK_BYTES = (2048, 4096)
"""A chunk's size range: small, so the chunks cost the server requests, not disk bandwidth
(the page's real chunks are about 350 KB: 10 s at 282 kbit/s)."""
CHUNK_TYPE = "video/webm"
WEBM_MAGIC = b"\x1a\x45\xdf\xa3"
"""The EBML header's first bytes: the first chunk of a WebM stream must start with them."""
CHUNK_CONNECTIONS = 1000
"""Keep-alive HTTP connections a worker may open for its sittings' uploads (opened as needed).

A page uploads on a connection of its own; one per sitting would put 20,000 sockets on the
server at 10,000 sittings, the process's limit here. 2,000 among two workers carry 1,000
uploads a second unless the server takes over 2 s for one; with 64 per worker (until
2026-11-24) uploads queued in the generator behind 128 connections, seconds each at 10,000."""


def pack(body: dict[str, Any]) -> bytes:
    frame: bytes = msgpack.packb(body, use_bin_type=True)
    return frame


FORM_PREFIX = msgpack.packb({"t": "form"})[1:]
"""A `form` frame starts with its map header, then these bytes (docs/protocol.md: "t" first)."""


def _at_items(frame: bytes) -> tuple[msgpack.Unpacker, int]:
    """An unpacker over a `form` frame standing at its first item, and how many items follow."""
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=len(frame) + 1)
    unpacker.feed(frame)
    for _ in range(unpacker.read_map_header()):
        if unpacker.unpack() == "items":
            return unpacker, int(unpacker.read_array_header())
        unpacker.skip()
    raise RuntimeError("a form frame without items")


def form_item_count(frame: bytes) -> int:
    """The number of items in a `form` frame, read from its header without decoding the items."""
    return _at_items(frame)[1]


def form_items(frame: bytes) -> list[tuple[str, int]]:
    """(item id, option count) of each item in a `form` frame, without decoding its texts."""
    unpacker, count = _at_items(frame)
    items = []
    for _ in range(count):
        item_id, options = "", 0
        for _ in range(unpacker.read_map_header()):
            key = unpacker.unpack()
            if key == "id":
                item_id = unpacker.unpack()
            elif key == "options":
                options = unpacker.read_array_header()
                for _ in range(options):
                    unpacker.skip()
            else:
                unpacker.skip()
        items.append((item_id, options))
    return items


def unpack(frame: bytes | str) -> dict[str, Any]:
    body: dict[str, Any] = msgpack.unpackb(frame, raw=False)
    return body


class ChunkRefused(Exception):
    """A chunk upload that did not end in the acknowledgement docs/protocol.md 6.3 promises."""


@dataclass
class Tally:
    """What one worker measured; written as JSON for the orchestrator."""

    latencies_ms: list[float] = field(default_factory=list)
    clock_errors_ms: list[float] = field(default_factory=list)
    clock_delays_ms: list[float] = field(default_factory=list)
    """Each clock's arrival minus its `server_time`, for clocks that arrived after the go."""
    prep_clock_delays_ms: list[float] = field(default_factory=list)
    """The same for clocks that arrived while the workers were still preparing."""
    go_at: float | None = None
    acked: list[tuple[str, int, str, int | None]] = field(default_factory=list)
    """(candidate id, seq, item id, shown choice) of every acknowledged answer."""
    completion_s: list[float] = field(default_factory=list)
    """Storms: seconds from the start until each sitting had what it needed."""
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    in_window: int = 0
    levels_sent: int = 0
    feed_delays_ms: list[float] = field(default_factory=list)
    """Watchers: arrival minus the feed frame's server_time, for frames after the start."""
    feed_bytes: int = 0
    chunks_sent: int = 0
    chunks_failed: int = 0
    chunks_turned_away: int = 0
    """`503 busy` replies (each sent again after its `retry_after`)."""
    chunks_waiting_at_end: int = 0
    """Chunks turned away whose next try fell past the window's end."""
    chunks_acked: list[tuple[str, int, str, int]] = field(default_factory=list)
    """(candidate id, seq, SHA-256, size) of every acknowledged media chunk."""
    chunk_latencies_ms: list[float] = field(default_factory=list)
    """From issuing the upload (a pooled connection may be awaited) to its 200 reply."""
    chunk_connections: int = 0
    """Keep-alive connections the uploads had opened when the window closed."""
    loop_lag: LoopLag = field(default_factory=lambda: LoopLag(period_s=0.02, window_s=3600))
    """This worker's own loop lag after the go: a late wake-up here delays what it timestamps
    (acks, clocks) without the server being slow."""
    prep_loop_lag: LoopLag = field(default_factory=lambda: LoopLag(period_s=0.02, window_s=3600))
    """The same while it prepares its sittings (the clocks they hold at the go arrived then)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "latencies_ms": [round(x, 3) for x in self.latencies_ms],
            "clock_errors_ms": [round(x, 3) for x in self.clock_errors_ms],
            "clock_delays_ms": [round(x, 3) for x in self.clock_delays_ms],
            "prep_clock_delays_ms": [round(x, 3) for x in self.prep_clock_delays_ms],
            "acked": self.acked,
            "completion_s": [round(x, 4) for x in self.completion_s],
            "errors": dict(self.errors),
            "sent": self.sent,
            "in_window": self.in_window,
            "levels_sent": self.levels_sent,
            "feed_delays_ms": [round(x, 3) for x in self.feed_delays_ms],
            "feed_bytes": self.feed_bytes,
            "chunks_sent": self.chunks_sent,
            "chunks_failed": self.chunks_failed,
            "chunks_turned_away": self.chunks_turned_away,
            "chunks_waiting_at_end": self.chunks_waiting_at_end,
            "chunks_acked": self.chunks_acked,
            "chunk_latencies_ms": [round(x, 3) for x in self.chunk_latencies_ms],
            "chunk_connections": self.chunk_connections,
            "loop_lag_ms": self.loop_lag.summary_ms(),
            "prep_loop_lag_ms": self.prep_loop_lag.summary_ms(),
            "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
        }


def _opens_media(spec: dict[str, Any]) -> bool:
    """Sittings open their media socket to upload chunks, or to send their levels there (a
    page that records has it open, and sends its levels on it)."""
    return bool(spec.get("chunks")) or spec.get("levels") == "media"


class Recording:
    """The fixation traffic a candidate page sends besides answers: audio levels on the socket
    and A/V chunks over HTTP. The engine's sittings and the bare ceiling's connections send
    the same, so the ceiling measures the stack under the exam day's whole load."""

    ws: ClientConnection | None
    tally: Tally
    part: str
    token: str
    candidate: str
    next_chunk: int
    url: str
    media_ws: ClientConnection | None = None
    """The media socket, for the first `media_sockets` of a worker's sittings (spec); the
    others upload over HTTP."""
    media_url: str | None = None
    """Where the sign-in said the media socket is (the server's own /ws/media if None)."""

    async def send_levels(self, rng: random.Random, *, on_media: bool = True) -> None:
        """A few seconds of microphone loudness, as the page sends for the talk detector: one of
        `LEVEL_FRAMES`, so making them costs this worker nothing in the window (50 draws a
        frame cost it 0.15 cores at 10,000 sittings, CPU a real page spends, not this one).
        On the media socket if this sitting has one and `on_media`, as the page does while its
        media socket is open; else on the candidate socket."""
        ws = self.media_ws if on_media and self.media_ws is not None else self.ws
        assert ws is not None
        quiet, speaking = LEVEL_FRAMES
        values = rng.choice(speaking if rng.random() < SPEECH_SHARE else quiet)
        start = time.time() - LEVELS_PER_FRAME * LEVELS_INTERVAL_MS / 1000
        body = {"t": "levels", "start": start, "interval_ms": LEVELS_INTERVAL_MS, "values": values}
        await ws.send(pack(body))
        self.tally.levels_sent += 1

    def _next_chunk(self, rng: random.Random) -> tuple[int, bytes, str]:
        """(seq, bytes, SHA-256) of the sitting's next chunk; the first starts a WebM stream."""
        seq = self.next_chunk
        self.next_chunk += 1
        data = rng.randbytes(rng.randint(*CHUNK_BYTES))
        if seq == 1:
            data = WEBM_MAGIC + data[len(WEBM_MAGIC) :]
        return seq, data, hashlib.sha256(data).hexdigest()

    async def upload_chunk(
        self, media: KeepAlivePool, rng: random.Random, deadline: float = float("inf")
    ) -> None:
        """POST the sitting's next media chunk and check the acknowledgement (seq, hash, size).

        Chunks are numbered from 1; the first starts with the WebM header. A chunk the server
        turns away (`503 busy`) is sent again after its `retry_after`, as the page does, unless
        that falls past `deadline` (the window's end); any other failed chunk is not sent
        again (a recorder moves on; the server records the gap).
        """
        seq, data, digest = self._next_chunk(rng)
        target = f"/api/v1/media/{self.part}/chunk?seq={seq}&client_time={time.time()!r}"
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": CHUNK_TYPE}
        sent_at = time.perf_counter()
        self.tally.chunks_sent += 1
        while True:
            async with asyncio.timeout(ACK_TIMEOUT_S):  # no task per upload, as wait_for
                status, body = await media.post(target, headers, data)
            reply = json.loads(body)
            if status != 503 or reply.get("error") != "busy":
                break
            self.tally.chunks_turned_away += 1
            if time.time() + reply["retry_after"] > deadline:
                self.tally.chunks_waiting_at_end += 1
                return
            await asyncio.sleep(reply["retry_after"])
        if status != 200:
            raise ChunkRefused(f"{status} {reply.get('error')}")
        self._check_ack(seq, data, digest, reply, sent_at)

    async def open_media(self) -> None:
        """Open the media socket (docs/protocol.md 6.4), as the page does while the candidate
        checks camera and microphone, before the part starts."""
        self.media_ws = await connect(
            self.media_url or self.url.replace("http://", "ws://") + "/ws/media",
            compression=None,
            max_size=MAX_SERVER_FRAME,
            open_timeout=120,
            ping_interval=None,
            close_timeout=5,
            proxy=None,
        )
        hello = {"t": "hello", "v": 1, "token": self.token, "part": self.part, "client": "bench"}
        await self.media_ws.send(pack(hello))
        ready = unpack(await self.media_ws.recv(decode=False))
        if ready.get("t") != "media-ready":
            raise RuntimeError(f"media hello refused: {ready.get('code', ready.get('t'))}")

    async def send_chunk(self, rng: random.Random, deadline: float = float("inf")) -> None:
        """`upload_chunk` on the media socket: a frame out, `stored` (or `refused`) back."""
        assert self.media_ws is not None
        seq, data, digest = self._next_chunk(rng)
        sent_at = time.perf_counter()
        self.tally.chunks_sent += 1
        while True:
            chunk = {"t": "chunk", "seq": seq, "type": CHUNK_TYPE, "data": data}
            await self.media_ws.send(pack(chunk | {"client_time": time.time()}))
            # A node that is behind holds the chunk (the page waits for its reply): one still
            # held when the window ends is counted as waiting, as one sent again would be.
            try:
                async with asyncio.timeout(
                    max(ACK_TIMEOUT_S, min(deadline - time.time() + 1, 3600))
                ):
                    reply = unpack(await self.media_ws.recv(decode=False))
            except TimeoutError:
                if time.time() < deadline:
                    raise
                self.tally.chunks_waiting_at_end += 1
                return
            if reply.get("error") != "busy":
                break
            self.tally.chunks_turned_away += 1
            if time.time() + reply["retry_after"] > deadline:
                self.tally.chunks_waiting_at_end += 1
                return
            await asyncio.sleep(reply["retry_after"])
        if reply.get("t") != "stored":
            raise ChunkRefused(f"{reply.get('t')} {reply.get('error', reply.get('code'))}")
        self._check_ack(seq, data, digest, reply, sent_at)

    def _check_ack(
        self, seq: int, data: bytes, digest: str, reply: dict[str, Any], sent_at: float
    ) -> None:
        if (reply.get("seq"), reply.get("sha256"), reply.get("size")) != (seq, digest, len(data)):
            raise ChunkRefused("ack_mismatch")
        self.tally.chunk_latencies_ms.append((time.perf_counter() - sent_at) * 1000)
        self.tally.chunks_acked.append((self.candidate, seq, digest, len(data)))

    async def close_media(self) -> None:
        if self.media_ws is not None:
            await self.media_ws.close()


class Sitting(Recording):
    """One candidate's connection to the bench part, as lean as the protocol allows."""

    def __init__(self, url: str, code: str, part: str, language: str, tally: Tally) -> None:
        self.url = url
        self.code = code
        self.part = part
        self.language = language
        self.tally = tally
        self.token = ""
        self.candidate = ""
        self.ws: ClientConnection | None = None
        self._items: list[tuple[str, int]] = []
        self._form_frame: bytes | None = None
        self.next_seq = 1
        self.next_item = 0
        self.countdown = Countdown()
        self.waiters: dict[int, asyncio.Future[None]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.resumed: asyncio.Future[None] | None = None
        self.next_chunk = 1

    @property
    def items(self) -> list[tuple[str, int]]:
        """(item id, option count) of the form, decoded when first needed, not on arrival:
        a 77 KiB form decoded in the storm cost the generator as much as the server's work."""
        if not self._items:
            self.read_form()
        return self._items

    def read_form(self) -> None:
        """Decode the form's item ids and option counts now, and let its bytes go.

        Workers that answer do it while they prepare: left to each sitting's first answer, the
        10,000 decodings fell in the window's first 10 s and took the generator 0.3–0.4 cores
        more than the rest of the window, out of the machine the server runs on.
        """
        if self._form_frame is not None:
            self._items, self._form_frame = form_items(self._form_frame), None

    async def sign_in(self, http: aiohttp.ClientSession) -> None:
        async with http.post(f"{self.url}/api/v1/signin", json={"code": self.code}) as response:
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"signin {response.status}: {body.get('error')}")
        self.token = body["token"]
        self.candidate = body["candidate"]["id"]
        self.media_url = body.get("media_socket")

    async def open(self) -> dict[str, Any]:
        """Connect and say hello; returns the welcome (form and clock follow when started)."""
        ws_url = self.url.replace("http://", "ws://") + "/ws/candidate"
        self.ws = await connect(
            ws_url,
            compression=None,
            max_size=MAX_SERVER_FRAME,
            open_timeout=120,
            ping_interval=None,
            close_timeout=5,
            proxy=None,
        )
        hello = {"t": "hello", "v": 1, "token": self.token, "part": self.part, "client": "bench"}
        await self.ws.send(pack(hello))
        welcome = unpack(await self.ws.recv(decode=False))
        if welcome.get("t") != "welcome":
            raise RuntimeError(f"hello refused: {welcome.get('code', welcome.get('t'))}")
        self.next_seq = max(self.next_seq, int(welcome["next_seq"]))
        return welcome

    async def start(self) -> None:
        """Start the part and keep the form's item ids and option counts."""
        assert self.ws is not None
        await self.ws.send(pack({"t": "start", "language": self.language}))
        await self._read_form_and_clock()

    async def _read_form_and_clock(self) -> None:
        assert self.ws is not None
        have_form = have_clock = False
        while not (have_form and have_clock):
            frame = await self.ws.recv(decode=False)
            assert isinstance(frame, bytes)
            if frame.startswith(FORM_PREFIX, 1):
                if form_item_count(frame) == 0:
                    raise RuntimeError("an empty form")
                self._form_frame, self._items = frame, []
                have_form = True
                continue
            msg = unpack(frame)
            kind = msg.get("t")
            if kind == "clock":
                self._take_clock(msg)
                have_clock = True
            elif kind == "error":
                raise RuntimeError(f"refused: {msg.get('code')}")

    def listen(self) -> None:
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                msg = unpack(frame)
                kind = msg.get("t")
                if kind == "ack":
                    waiter = self.waiters.pop(msg["seq"], None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                elif kind == "clock":
                    self._take_clock(msg)
                elif kind == "error":
                    self.tally.errors[f"server:{msg.get('code')}"] += 1
                    waiter = self.waiters.pop(msg.get("seq") or -1, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_exception(RuntimeError(msg.get("code")))
        except ConnectionClosed:
            pass
        finally:
            for waiter in self.waiters.values():
                if not waiter.done():
                    waiter.set_exception(ConnectionError("closed"))
            self.waiters.clear()

    def _take_clock(self, msg: dict[str, Any]) -> None:
        self.countdown.update(int(msg["remaining_ms"]), msg["state"], msg.get("deadline"))
        arrived = time.time()
        go_at = self.tally.go_at
        delays = self.tally.prep_clock_delays_ms
        if go_at is not None and arrived >= go_at:
            delays = self.tally.clock_delays_ms
        delays.append((arrived - float(msg["server_time"])) * 1000)

    def clock_error_ms(self) -> float | None:
        """Shown remaining time minus the server's truth (deadline - now), in milliseconds.

        Shown is what a client following docs/protocol.md 2.3 displays (engine/countdown.py):
        the server's clocks counted down on the client's monotonic clock from their arrival,
        never raised by one that arrived later than the one kept.
        """
        deadline, shown = self.countdown.deadline, self.countdown.shown_s()
        if deadline is None or shown is None:  # none yet, or not running: no deadline kept
            return None
        return (shown - (deadline - time.time())) * 1000

    async def answer(self, record: bool) -> None:
        """Send the next answer and wait for its acknowledgement."""
        assert self.ws is not None
        items = self.items
        item, options = items[self.next_item % len(items)]
        self.next_item += 1
        choice = (self.next_item * 7 + len(self.candidate)) % options
        seq = self.next_seq
        self.next_seq += 1
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters[seq] = waiter
        sent_at = time.perf_counter()
        body = {
            "t": "answer",
            "seq": seq,
            "item": item,
            "choice": choice,
            "flagged": False,
            "client_time": time.time(),
        }
        await self.ws.send(pack(body))
        self.tally.sent += 1
        async with asyncio.timeout(ACK_TIMEOUT_S):
            await waiter
        self.tally.acked.append((self.candidate, seq, item, choice))
        if record:
            self.tally.latencies_ms.append((time.perf_counter() - sent_at) * 1000)
            self.tally.in_window += 1

    async def drop(self) -> None:
        """Lose the connection as a network would: no closing handshake."""
        if self.ws is not None:
            self.ws.transport.abort()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)

    async def close(self) -> None:
        await self.close_media()
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


class EchoConnection(Recording):
    """A connection to the bare ceiling server: answers out and acks back, and the same levels
    and chunks as a sitting (which the bare server reads and, for chunks, acknowledges)."""

    def __init__(self, url: str, index: int, tally: Tally) -> None:
        self.url = url
        self.index = index
        self.tally = tally
        self.ws: ClientConnection | None = None
        self.seq = 0
        self.part = "ceiling"
        self.token = "ceiling"
        self.candidate = f"echo-{index}"
        self.next_chunk = 1

    async def open(self) -> None:
        self.ws = await connect(
            self.url.replace("http://", "ws://") + "/ws",
            compression=None,
            max_size=MAX_SERVER_FRAME,
            open_timeout=120,
            ping_interval=None,
            close_timeout=5,
            proxy=None,
        )

    async def answer(self, record: bool) -> None:
        assert self.ws is not None
        self.seq += 1
        body = {
            "t": "answer",
            "seq": self.seq,
            "item": f"po-{self.seq % 120:03d}",
            "choice": self.seq % 4,
            "flagged": False,
            "client_time": time.time(),
        }
        sent_at = time.perf_counter()
        self.tally.sent += 1
        await self.ws.send(pack(body))
        async with asyncio.timeout(ACK_TIMEOUT_S):
            reply = unpack(await self.ws.recv(decode=False))
        if reply.get("seq") != self.seq:
            self.tally.errors["echo:wrong_seq"] += 1
        if record:
            self.tally.latencies_ms.append((time.perf_counter() - sent_at) * 1000)
            self.tally.in_window += 1

    async def close(self) -> None:
        await self.close_media()
        if self.ws is not None:
            await self.ws.close()


class ProctorWatcher:
    """A proctor's dashboard: signs in, watches one site and reads its feed."""

    def __init__(self, url: str, login: str, password: str, site: str, tally: Tally) -> None:
        self.url = url
        self.login = login
        self.password = password
        self.site = site
        self.tally = tally
        self.token = ""
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.measure_from = float("inf")

    async def sign_in(self, http: aiohttp.ClientSession) -> None:
        body = {"login": self.login, "password": self.password}
        async with http.post(f"{self.url}/api/v1/staff/signin", json=body) as response:
            reply = await response.json()
            if response.status != 200:
                raise RuntimeError(f"staff signin {response.status}: {reply.get('error')}")
        self.token = reply["token"]

    async def open(self) -> None:
        self.ws = await connect(
            self.url.replace("http://", "ws://") + "/ws/proctor",
            compression=None,
            max_size=MAX_SERVER_FRAME,
            open_timeout=120,
            ping_interval=None,
            close_timeout=5,
            proxy=None,
        )
        await self.ws.send(pack({"t": "watch", "v": 1, "token": self.token, "site": self.site}))
        first = unpack(await self.ws.recv(decode=False))
        if first.get("t") != "feed":
            raise RuntimeError(f"watch refused: {first.get('code', first.get('t'))}")
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for frame in self.ws:
                arrived = time.time()
                if arrived < self.measure_from:
                    continue
                msg = unpack(frame)
                if msg.get("t") == "feed":
                    self.tally.feed_delays_ms.append((arrived - msg["server_time"]) * 1000)
                    self.tally.feed_bytes += len(frame)
        except ConnectionClosed:
            pass

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await asyncio.gather(self.reader, return_exceptions=True)


async def watch(spec: dict[str, Any], tally: Tally) -> None:
    """Workload 5: proctors watch their rooms' feeds while the exam-day load runs."""
    watchers = [
        ProctorWatcher(spec["url"], login, password, site, tally)
        for login, password, site in spec["staff"]
    ]
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await asyncio.gather(*(gated(gate, w.sign_in(http)) for w in watchers))
    await asyncio.gather(*(gated(gate, w.open()) for w in watchers))
    ready()
    start_at = await wait_for_go(tally)
    for watcher in watchers:
        watcher.measure_from = start_at
    await asyncio.sleep(max(0.0, start_at + spec["duration_s"] - time.time()))
    await finished_then_wait_for_hangup()
    await asyncio.gather(*(w.close() for w in watchers), return_exceptions=True)


# -- workloads ------------------------------------------------------------------------------------


async def gated(gate: asyncio.Semaphore, coroutine: Any) -> Any:
    async with gate:
        return await coroutine


async def prepare_sittings(
    spec: dict[str, Any], tally: Tally, *, connect_now: bool, start_now: bool
) -> list[Sitting]:
    """Sign every code in; optionally connect and start (bounded concurrency)."""
    sittings = [
        Sitting(spec["url"], code, spec["part"], spec["language"], tally) for code in spec["codes"]
    ]
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    connector = aiohttp.TCPConnector(limit=SETUP_CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await asyncio.gather(*(gated(gate, s.sign_in(http)) for s in sittings))
    if connect_now:
        with_media_socket = set(
            sittings[: spec.get("media_sockets", 0)] if _opens_media(spec) else []
        )

        async def connect_and_start(sitting: Sitting) -> None:
            await sitting.open()
            if sitting in with_media_socket:
                await sitting.open_media()
            if start_now:
                await sitting.start()
                sitting.listen()

        await asyncio.gather(*(gated(gate, connect_and_start(s)) for s in sittings))
    return sittings


async def closed_loop(
    spec: dict[str, Any], tally: Tally, clients: list[Any], start_at: float
) -> None:
    """Every connection answers as soon as its previous answer is acknowledged."""
    measure_from = start_at + spec.get("warmup_s", 0.0)
    end = start_at + spec["duration_s"]

    async def run(client: Any) -> None:
        while (now := time.time()) < end:
            try:
                await client.answer(record=now >= measure_from)
            except (ConnectionError, ConnectionClosed, TimeoutError, RuntimeError) as error:
                tally.errors[f"answer:{type(error).__name__}"] += 1
                return

    await asyncio.gather(*(run(client) for client in clients))


async def paced(spec: dict[str, Any], tally: Tally, clients: list[Any], start_at: float) -> None:
    """Every connection answers about once per interval, phases spread at random."""
    interval = spec["interval_s"]
    end = start_at + spec["duration_s"]
    rng = random.Random(spec.get("seed", 0))

    async def run(client: Any, first: float) -> None:
        await asyncio.sleep(max(0.0, start_at + first - time.time()))
        while time.time() < end:
            if isinstance(client, Sitting):
                error_ms = client.clock_error_ms()
                if error_ms is not None:
                    tally.clock_errors_ms.append(error_ms)
            try:
                await client.answer(record=True)
            except (ConnectionError, ConnectionClosed, TimeoutError, RuntimeError) as error:
                tally.errors[f"answer:{type(error).__name__}"] += 1
                return
            await asyncio.sleep(interval * rng.uniform(0.5, 1.5))

    on_media = spec.get("levels") != "candidate"

    async def levels(client: Recording, first: float) -> None:
        await asyncio.sleep(max(0.0, start_at + first - time.time()))
        period = LEVELS_PER_FRAME * LEVELS_INTERVAL_MS / 1000
        while time.time() < end:
            try:
                await client.send_levels(rng, on_media=on_media)
            except ConnectionClosed:
                tally.errors["levels:closed"] += 1
                return
            await asyncio.sleep(period)

    # Chunks draw from their own generator, so answers and levels keep the schedule they have
    # without chunks (and that the paced ceiling gets).
    chunk_rng = random.Random(f"chunks-{spec.get('seed', 0)}")

    async def chunks(client: Recording, media: KeepAlivePool | None, first: float) -> None:
        due = start_at + first
        while due < end and time.time() < end:
            await asyncio.sleep(max(0.0, due - time.time()))
            try:
                if media is None:
                    await client.send_chunk(chunk_rng, end)
                else:
                    await client.upload_chunk(media, chunk_rng, end)
            except Exception as error:
                tally.chunks_failed += 1
                tally.errors[f"chunk:{type(error).__name__}:{error}"[:80]] += 1
            due += CHUNK_PERIOD_S

    runs = [run(c, rng.uniform(0, interval)) for c in clients]
    if spec.get("levels"):
        period = LEVELS_PER_FRAME * LEVELS_INTERVAL_MS / 1000
        runs += [levels(c, rng.uniform(0, period)) for c in clients if isinstance(c, Recording)]
    recording = [c for c in clients if isinstance(c, Recording)]
    if spec.get("chunks") and recording:
        # A sitting with a media socket sends its chunks there, the rest over HTTP.
        runs += [
            chunks(c, None, chunk_rng.uniform(0, CHUNK_PERIOD_S))
            for c in recording
            if c.media_ws is not None
        ]
        over_http = [c for c in recording if c.media_ws is None]
    else:
        over_http = []
    if over_http:
        address = urllib.parse.urlsplit(spec["url"])
        assert address.hostname is not None and address.port is not None
        media = KeepAlivePool(
            address.hostname, address.port, spec.get("chunk_connections", CHUNK_CONNECTIONS)
        )
        runs += [chunks(c, media, chunk_rng.uniform(0, CHUNK_PERIOD_S)) for c in over_http]
        try:
            await asyncio.gather(*runs)
        finally:
            tally.chunk_connections = media.opened
            await media.close()
    else:
        await asyncio.gather(*runs)


async def start_storm(spec: dict[str, Any], tally: Tally, start_at: float) -> None:
    """From the start, every candidate signs in, connects, starts and gets form and clock."""
    sittings = [
        Sitting(spec["url"], code, spec["part"], spec["language"], tally) for code in spec["codes"]
    ]
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        await asyncio.sleep(max(0.0, start_at - time.time()))

        async def one(sitting: Sitting) -> None:
            try:
                await sitting.sign_in(http)
                await sitting.open()
                await sitting.start()
                tally.completion_s.append(time.time() - start_at)
            except Exception as error:
                tally.errors[f"storm:{type(error).__name__}:{error}"[:80]] += 1

        await asyncio.gather(*(one(s) for s in sittings))
    await asyncio.gather(*(s.close() for s in sittings), return_exceptions=True)


async def reconnect_storm(
    spec: dict[str, Any], tally: Tally, sittings: list[Sitting], start_at: float
) -> None:
    """At the start every connection is lost at once and every sitting resumes at once."""
    await asyncio.sleep(max(0.0, start_at - time.time()))
    await asyncio.gather(*(s.drop() for s in sittings))

    async def resume(sitting: Sitting) -> None:
        try:
            welcome = await sitting.open()
            await sitting._read_form_and_clock()
            if welcome["next_seq"] != sitting.next_seq:
                tally.errors["resume:next_seq_mismatch"] += 1
            tally.completion_s.append(time.time() - start_at)
            sitting.listen()
        except Exception as error:
            tally.errors[f"resume:{type(error).__name__}:{error}"[:80]] += 1

    await asyncio.gather(*(resume(s) for s in sittings))


# -- the process ----------------------------------------------------------------------------------


def raise_file_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def wait_for_go(tally: Tally) -> float:
    """Block until the orchestrator writes ``go START_AT``; returns START_AT.

    From START_AT on the worker's own loop lag is sampled (the task ends with the process).
    """
    line = await asyncio.to_thread(sys.stdin.readline)
    word, _, value = line.strip().partition(" ")
    if word != "go":
        raise SystemExit(f"expected 'go START_AT', got {line!r}")
    start_at = float(value)
    tally.go_at = start_at
    _LAG_TASKS.add(asyncio.get_running_loop().create_task(_lag_from(start_at, tally.loop_lag)))
    return start_at


async def _lag_from(start_at: float, lag: LoopLag) -> None:
    await asyncio.sleep(max(0.0, start_at - time.time()))
    await lag.run()


_LAG_TASKS: set[asyncio.Task[None]] = set()
"""Keeps the lag sleepers referenced while they run."""


async def _run_window(
    closed: bool, spec: dict[str, Any], tally: Tally, clients: list[Any], start_at: float
) -> None:
    """Closed loop from START_AT; paced at once, so its 10,000-odd tasks are made and asleep
    before START_AT (made at START_AT, their first steps held the loop for 0.2–0.4 s while the
    window's first answers waited)."""
    if closed:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await closed_loop(spec, tally, clients, start_at)
    else:
        await paced(spec, tally, clients, start_at)


def say(word: str) -> None:
    print(word, flush=True)


def ready() -> None:
    """Collect what the preparation left, freeze the rest (never walked again), say ``ready``.

    The one collection falls here, with nothing timed: a frame read late meanwhile is a clock
    whose figure the sitting's countdown already has from an earlier, timely one.
    """
    gc.collect()
    gc.freeze()
    say("ready")


async def finished_then_wait_for_hangup() -> None:
    """Say ``finished`` and keep every connection open until the orchestrator says ``hangup``.

    It says so once every worker has finished: a worker closing its 5,000 sockets while another
    still has acks in flight kept the server busy, and those acks counted late.
    """
    say("finished")
    line = await asyncio.to_thread(sys.stdin.readline)
    if line.strip() != "hangup":
        raise SystemExit(f"expected 'hangup', got {line!r}")


async def main_async(spec: dict[str, Any]) -> Tally:
    tally = Tally()
    mode = spec["mode"]
    if mode in ("echo-closed", "echo-paced"):
        echoes = [EchoConnection(spec["url"], i, tally) for i in range(spec["connections"])]
        gate = asyncio.Semaphore(SETUP_CONCURRENCY)
        await asyncio.gather(*(gated(gate, e.open()) for e in echoes))
        if _opens_media(spec):
            with_media_socket = echoes[: spec.get("media_sockets", 0)]
            await asyncio.gather(*(gated(gate, e.open_media()) for e in with_media_socket))
        ready()
        start_at = await wait_for_go(tally)
        await _run_window(mode == "echo-closed", spec, tally, echoes, start_at)
        await finished_then_wait_for_hangup()
        await asyncio.gather(*(e.close() for e in echoes), return_exceptions=True)
    elif mode in ("closed-loop", "exam-day"):
        prep_lag = asyncio.get_running_loop().create_task(tally.prep_loop_lag.run())
        sittings = await prepare_sittings(spec, tally, connect_now=True, start_now=True)
        for sitting in sittings:
            sitting.read_form()
        ready()
        start_at = await wait_for_go(tally)
        prep_lag.cancel()
        await _run_window(mode == "closed-loop", spec, tally, sittings, start_at)
        await finished_then_wait_for_hangup()
        await asyncio.gather(*(s.close() for s in sittings), return_exceptions=True)
    elif mode == "watch":
        await watch(spec, tally)
    elif mode == "start-storm":
        ready()
        await start_storm(spec, tally, await wait_for_go(tally))
        await finished_then_wait_for_hangup()
    elif mode == "reconnect-storm":
        sittings = await prepare_sittings(spec, tally, connect_now=True, start_now=True)
        for sitting in sittings:  # a little history to resume
            for _ in range(spec.get("answers_before", 3)):
                await sitting.answer(record=False)
        ready()
        await reconnect_storm(spec, tally, sittings, await wait_for_go(tally))
        await finished_then_wait_for_hangup()
        await asyncio.gather(*(s.close() for s in sittings), return_exceptions=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    return tally


def main() -> None:
    # No automatic collection in a worker (it lives for one workload): holding 5,000
    # connections, a full collection stopped it for up to a second, and every frame then
    # arriving was timestamped that late. In its preparation that made the clocks its sittings
    # held at the go look 0.8 s late (clock error p99 588 ms, against 27 ms for the clocks'
    # delivery in the window); after the go it made acks in flight look late. It collects
    # once, when prepared (`ready`).
    gc.disable()
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    raise_file_limit()
    # The generator runs on the same event loop as the servers it measures (uvloop if installed).
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        tally = runner.run(main_async(spec))
    out = Path(spec["out"])
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(tally.to_json()), encoding="utf-8")
    os.replace(tmp, out)
    say("done")


if __name__ == "__main__":
    main()
