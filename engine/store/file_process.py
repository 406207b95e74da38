"""Durable appends to segment files in a child process, so uploads never take turns at the GIL.

A media chunk must be on disk (written and synced) before the commit that records it. On
threads of the serving process each upload's system calls waited to retake the GIL from the
event loop; in the child (engine/store/file_child.py) they wait for nobody. The event loop pays
one pipe write per turn for all the uploads of that turn, and reads the replies in batches.

The child starts with the first write (a store that never takes an upload never starts one)
and again after it died: what it had not answered fails with a `StoreError`, never silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.exceptions import StoreError
from engine.store import file_child

log = logging.getLogger("examhall.store")


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an upload is now on disk, durably, and its SHA-256 digest."""

    segment: str
    """The segment's file name in the process's folder."""
    offset: int
    digest: bytes


Written = Appended | Exception
"""What a write became: where it is, or why it failed."""


@dataclass
class _Child:
    process: asyncio.subprocess.Process
    waiting: dict[int, Callable[[Written], None]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None
    unsent: list[bytes] = field(default_factory=list)


class FileProcess:
    """Appends to segment files in `folder` durably, in a child process; `then` is called on the
    event loop with each outcome, in the order the child finishes them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.started = 0
        self.written = 0
        self.refused = 0
        self.lost = 0
        """Writes a child took with it when it died (their callers were told)."""
        self._child: _Child | None = None
        self._starting: asyncio.Lock | None = None
        self._ids = itertools.count(1)

    async def append(self, data: bytes, then: Callable[[Written], None]) -> None:
        """Send `data` to be appended to a segment and synced.

        Returns once the request is on its way; `then` gets the outcome. Between the two,
        `stop` waits for it."""
        child = self._child or await self._start()
        request_id = next(self._ids)
        child.waiting[request_id] = then
        if not child.unsent:
            asyncio.get_running_loop().call_soon(self._send, child)
        child.unsent += (file_child.REQUEST.pack(request_id, len(data)), data)
        stdin = child.process.stdin
        assert stdin is not None
        with contextlib.suppress(ConnectionError):  # the child died: its reader fails the rest
            await stdin.drain()  # waits only while the child is behind by a pipe's worth

    @staticmethod
    def _send(child: _Child) -> None:
        """The requests of one turn of the event loop, in one write to the pipe."""
        unsent, child.unsent = child.unsent, []
        stdin = child.process.stdin
        assert stdin is not None
        if not stdin.is_closing():
            stdin.write(b"".join(unsent))

    def stats(self) -> dict[str, int | bool]:
        child = self._child
        return {
            "running": child is not None,
            "unanswered": len(child.waiting) if child is not None else 0,
            "started": self.started,
            "written": self.written,
            "refused": self.refused,
            "lost_with_a_child": self.lost,
        }

    async def stop(self) -> None:
        """Let the child finish and answer everything it was given, then end it."""
        if self._starting is not None:
            async with self._starting:
                pass  # a start under way finishes, and its first write is sent, before the stop
        child, self._child = self._child, None
        if child is None:
            return
        assert child.process.stdin is not None and child.reader is not None
        if child.unsent:
            self._send(child)
        child.process.stdin.close()
        await child.reader

    async def _start(self) -> _Child:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._child is None:
                process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-P",  # its own folder is not put on the path: nothing there shadows the stdlib
                    str(Path(file_child.__file__)),
                    str(self.folder),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
                self.started += 1
                child = _Child(process)
                child.reader = asyncio.create_task(self._read_replies(child))
                self._child = child
            return self._child

    async def _read_replies(self, child: _Child) -> None:
        stdout = child.process.stdout
        assert stdout is not None
        try:
            while True:
                header = await stdout.readexactly(file_child.REPLY.size)
                request_id, code, digest, offset, size = file_child.REPLY.unpack(header)
                text = (await stdout.readexactly(size)).decode() if size else ""
                then = child.waiting.pop(request_id, _unasked)
                if code:
                    self.refused += 1
                    _hand_on(then, OSError(code, text, str(self.folder)))
                else:
                    self.written += 1
                    _hand_on(then, Appended(text, offset, digest))
        except asyncio.IncompleteReadError:
            pass  # the child ended: stopped, or died
        exit_code = await child.process.wait()
        if self._child is child:
            self._child = None
        if child.waiting:
            log.error(
                "file process ended (exit code %s) with %d writes unanswered",
                exit_code,
                len(child.waiting),
            )
        self.lost += len(child.waiting)
        for then in child.waiting.values():
            failure = f"the file process ended (exit code {exit_code}) before it wrote an upload"
            _hand_on(then, StoreError(failure))
        child.waiting.clear()


def _unasked(outcome: Written) -> None:
    log.error("the file process answered a write nobody asked for: %r", outcome)


def _hand_on(then: Callable[[Written], None], outcome: Written) -> None:
    try:
        then(outcome)
    except Exception:  # one caller's mistake must not stop the replies to every other
        log.exception("handing on a file write's outcome failed")
