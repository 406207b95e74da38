"""The media process: the candidate pages' media sockets, served beside the serving process.

At 10,000 sittings the pages send about 1,000 chunk uploads a second. Served by the serving
process, every one of them took its turn at that process's GIL and event loop (reading the
frame, handing its bytes to the file process, replying) between the answers, and its 10,000
media sockets did not fit beside the 10,000 candidate sockets in one process's open files.
Here they have a process of their own: it reads each frame, checks its bytes, appends them to
a segment file and syncs (one `fdatasync` a batch, on a thread), and asks the serving process
only to check the token and sitting and to record where the bytes are
(engine/server/media_pipe.py). It runs at a lower priority (`nice`), so that when the cores
are short the answers get them first; an upload can wait, its page keeps it.

The page also sends its microphone levels here while the socket is open (2,000 frames a second
at 10,000 sittings, which on the candidate socket took the serving loop about a third of its
time). The detectors (plugins, engine/detection.py) run here on them, with a state per socket,
and only what they find crosses to the serving process (FOUND), to be noted on the sitting.

`MediaLink` (engine/server/media_link.py) starts it as ``python -m engine.server.media_process
--data DIR --host H --port P``; it says READY with the port it listens on. At the end of its
input or on STOP it closes its sockets (1001, the pages come back), waits for what it asked,
and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import logging
import os
import resource
import signal
import socket
import sys
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from engine import wire
from engine.detection import DetectorRegistry, with_detectors
from engine.fixation import Kind, base_type
from engine.latency import percentiles_ms
from engine.plugins import create_plugin_manager
from engine.server import media_pipe as pipe
from engine.server.hall import check_levels
from engine.server.media_socket import (
    Gone,
    Upload,
    fatal,
    refused_frame,
    serve_media_socket,
    stored_frame,
)
from engine.server.quiet_sockets import QuietSockets
from engine.server.tuning import collection_in_hand, new_event_loop, share_gil
from engine.server.uploads import Refusal, Unfit, unfit_chunk, unfit_snapshot
from engine.store.file_child import Segments
from engine.store.file_process import Appended
from engine.store.sqlite import SQLiteStore

log = logging.getLogger("examhall.media_process")


class SegmentWriter:
    """Appends uploads to segment files on one thread: what arrives while a batch is written
    and synced goes together in the next, so a busy second costs a few syncs, not one each."""

    def __init__(self, folder: Path) -> None:
        self._segments = Segments(str(folder))
        self._waiting: list[tuple[bytes, asyncio.Future[Appended | OSError]]] = []
        self._writing = False
        self.appended = 0
        self.failed = 0
        self.batches = 0
        self.batch_s: deque[float] = deque(maxlen=1000)
        """How long each of the last 1,000 batches took to write and sync: the disk's share of
        an upload's wait."""

    async def append(self, data: bytes) -> Appended | OSError:
        future: asyncio.Future[Appended | OSError] = asyncio.get_running_loop().create_future()
        self._waiting.append((data, future))
        if not self._writing:
            self._writing = True
            asyncio.get_running_loop().call_soon(self._next_batch)
        return await future

    def _next_batch(self) -> None:
        batch, self._waiting = self._waiting, []
        if not batch:
            self._writing = False
            return
        task = asyncio.get_running_loop().run_in_executor(None, self._write, batch)
        task.add_done_callback(lambda _: self._next_batch())

    def _write(self, batch: list[tuple[bytes, asyncio.Future[Appended | OSError]]]) -> None:
        """On the thread: append, sync, and hand each caller its outcome on the loop."""
        began = time.perf_counter()
        name, offsets, failure = self._segments.append_batch([data for data, _ in batch])
        self.batch_s.append(time.perf_counter() - began)
        self.batches += 1
        outcomes: list[Appended | OSError] = [
            Appended(name, offset, hashlib.sha256(data).digest())
            for (data, _), offset in zip(batch, offsets, strict=False)
        ]
        if failure is not None:
            outcomes += [failure] * (len(batch) - len(offsets))
        self.appended += len(offsets)
        self.failed += len(batch) - len(offsets)
        loop = batch[0][1].get_loop()
        loop.call_soon_threadsafe(_settle, [future for _, future in batch], outcomes)


def _settle(
    futures: list[asyncio.Future[Appended | OSError]], outcomes: list[Appended | OSError]
) -> None:
    for future, outcome in zip(futures, outcomes, strict=True):
        if not future.done():
            future.set_result(outcome)


@dataclass
class ParentDesk:
    """A `MediaDesk` that writes the bytes here and asks the serving process for the rest."""

    pipe: pipe.Pipe
    writer: SegmentWriter
    detectors: DetectorRegistry
    detector_states: dict[object, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Each open socket's detector states, by handle (a new socket starts afresh)."""
    levels_frames: int = 0
    findings: int = 0
    asked: dict[int, asyncio.Future[list[Any]]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    taken: int = 0
    waiting: dict[object, Gone] = field(default_factory=dict)
    """Sockets whose upload waits for the serving process's reply, by handle."""
    left: set[object] = field(default_factory=set)
    """Handles whose LEAVE was sent while their upload still waited."""

    async def ask(self, message: list[Any]) -> list[Any]:
        request_id = next(self.ids)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self.asked[request_id] = future
        self.pipe.send([message[0], request_id, *message[1:]])
        try:
            return await future
        finally:
            self.asked.pop(request_id, None)

    def answer(self, reply: list[Any]) -> None:
        future = self.asked.get(reply[1])
        if future is not None and not future.done():
            future.set_result(reply)

    def fail_all(self) -> None:
        """The serving process is gone: nothing asked of it will be answered."""
        for future in self.asked.values():
            if not future.done():
                future.set_exception(
                    fatal("server_error", "the server is restarting", wire.CloseCode.GOING_AWAY)
                )

    async def greet(self, hello: wire.Hello) -> object:
        reply = await self.ask([pipe.GREET, hello.token, hello.part])
        _raise_if_fatal(reply)
        return reply[2]

    async def take(self, handle: object, upload: Upload, gone: Gone) -> bytes | None:
        media_type = base_type(upload.type)
        if isinstance(upload, wire.Chunk):
            kind, seq, client_time = Kind.CHUNK, upload.seq, upload.client_time
            unfit = unfit_chunk(upload.seq, media_type, upload.data)
        else:
            kind, seq, client_time = Kind.SNAPSHOT, 0, None
            unfit = unfit_snapshot(media_type, upload.data)
        if unfit is not None:
            reply = await self.ask(_unfit_message(handle, kind, seq, unfit))
        else:
            placed = await self.writer.append(upload.data)
            if isinstance(placed, OSError):
                refusal = Refusal(
                    503, "not_stored", f"{kind.value} was not stored ({placed}); send it again"
                )
                return refused_frame(upload, refusal)
            self.waiting[handle] = gone  # held while the node is behind: a page may give up
            try:
                reply = await self._place(
                    handle, kind, seq, media_type, client_time, upload, placed
                )
            finally:
                self.waiting.pop(handle, None)
        _raise_if_fatal(reply)
        if reply[0] == pipe.DROPPED:
            return None
        if reply[0] == pipe.REFUSED:
            _, _, status, code, message = reply
            return refused_frame(upload, Refusal(status, code, message))
        _, _, stored_seq, sha256, size, server_time = reply
        self.taken += 1
        return stored_frame(upload, stored_seq, sha256, size, server_time)

    async def _place(
        self,
        handle: object,
        kind: Kind,
        seq: int,
        media_type: str,
        client_time: float | None,
        upload: Upload,
        placed: Appended,
    ) -> list[Any]:
        return await self.ask(
            [
                pipe.PLACE,
                handle,
                kind.value,
                seq,
                media_type,
                client_time,
                len(upload.data),
                placed.segment,
                placed.offset,
                placed.digest,
            ]
        )

    async def levels(self, handle: object, levels: wire.Levels) -> None:
        check_levels(levels)
        self.levels_frames += 1
        states = self.detector_states.setdefault(handle, {})
        found = self.detectors.levels(
            states, levels.start, levels.interval_ms / 1000, levels.values
        )
        for source, finding in found:
            self.findings += 1
            self.pipe.send(
                [pipe.FOUND, handle, source, finding.kind, finding.detail, finding.severity]
            )

    def leave(self, handle: object) -> None:
        self.detector_states.pop(handle, None)
        if handle in self.left:
            self.left.discard(handle)
        else:
            self.pipe.send([pipe.LEAVE, handle])

    async def watch_waiting(self, every_s: float = 0.5) -> None:
        """Tell the serving process of a page that closed its socket while its upload waited,
        so the upload is dropped, not recorded, when its turn comes (its page sends it again).
        The socket's own handler learns of the close only once the reply is in."""
        while True:
            await asyncio.sleep(every_s)
            for handle, gone in list(self.waiting.items()):
                if handle not in self.left and gone():
                    self.left.add(handle)
                    self.pipe.send([pipe.LEAVE, handle])


def _unfit_message(handle: object, kind: Kind, seq: int, unfit: Unfit) -> list[Any]:
    finding = unfit.finding
    return [
        pipe.UNFIT,
        handle,
        kind.value,
        seq,
        unfit.refusal.status,
        unfit.refusal.code,
        unfit.refusal.message,
        finding.kind if finding is not None else None,
        finding.detail if finding is not None else None,
        finding.severity if finding is not None else 0,
    ]


def _raise_if_fatal(reply: list[Any]) -> None:
    if reply[0] == pipe.FATAL:
        _, _, code, message, close_code = reply
        raise fatal(code, message, close_code)


async def run(data_dir: Path, host: str, port: int, hello_timeout_s: float, quiet_s: float) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout.buffer
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    link = pipe.Pipe(reader, writer)
    detectors = DetectorRegistry(with_detectors(create_plugin_manager()))
    desk = ParentDesk(link, SegmentWriter(data_dir / SQLiteStore.SEGMENTS), detectors)
    quiet = QuietSockets(quiet_s)
    sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def media_socket(request: web.Request) -> web.WebSocketResponse:
        return await serve_media_socket(request, desk, quiet, hello_timeout_s, sockets)

    app = web.Application()
    app.router.add_get("/ws/media", media_socket)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2)
    await runner.setup()
    listening = socket.create_server((host, port), backlog=4096, reuse_port=False)
    bound = listening.getsockname()[1]
    site = web.SockSite(runner, listening, backlog=4096)
    await site.start()
    link.send([pipe.READY, bound])
    sweeper = asyncio.create_task(quiet.run())
    reporter = asyncio.create_task(_report(link, desk, sockets))
    watcher = asyncio.create_task(desk.watch_waiting())
    async with collection_in_hand(quiet=lambda: not sockets):
        async for message in link.messages():
            if message[0] in pipe.REPLIES:
                desk.answer(message)
            elif message[0] == pipe.STOP:
                break
        # Stopping: no new sockets; an upload still waiting for its record is told to come
        # back (1001) with every other open socket, and sends it again.
        await site.stop()
        desk.fail_all()
        for ws in list(sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close(code=wire.CloseCode.GOING_AWAY, message=b"server restarting")
        sweeper.cancel()
        reporter.cancel()
        watcher.cancel()
        await runner.cleanup()
        link.close()


async def _report(
    link: pipe.Pipe, desk: ParentDesk, sockets: weakref.WeakSet[web.WebSocketResponse]
) -> None:
    while True:
        writer = desk.writer
        link.send(
            [
                pipe.STATS,
                {
                    "sockets": len(sockets),
                    "taken": desk.taken,
                    "asking": len(desk.asked),
                    "appended": writer.appended,
                    "append_failures": writer.failed,
                    "syncs": writer.batches,
                    "recent_sync_ms": percentiles_ms(list(writer.batch_s)),
                    "levels_frames": desk.levels_frames,
                    "findings": desk.findings,
                },
            ]
        )
        await asyncio.sleep(1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--hello-timeout", type=float, default=10.0)
    parser.add_argument("--quiet", type=float, default=60.0)
    parser.add_argument("--nice", type=int, default=5)
    parser.add_argument("--event-loop", default="auto")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s media process: %(message)s"
    )
    # Ctrl-C and a service manager's stop reach the whole group; the serving process stops
    # this one in order (STOP, or the end of its input) once its own sockets are closed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args.nice:
        os.nice(args.nice)
    _, most_files = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (most_files, most_files))
    share_gil()
    loop = new_event_loop(args.event_loop)
    try:
        loop.run_until_complete(
            run(args.data, args.host, args.port, args.hello_timeout, args.quiet)
        )
    except OSError as error:
        log.error("cannot serve media sockets on %s:%s: %s", args.host, args.port, error)
        return 1
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
