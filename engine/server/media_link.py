"""The serving process's side of the media process (engine/server/media_process.py).

Starts it, answers what it asks (engine/server/media_pipe.py) and starts it again if it dies.
What is left here per upload is what only the serving process can decide: is the token still
valid, is the sitting still open, is this chunk new, a repeat or a clash; then the record and
its journal entry in the next group commit, and the proctor's tile. A node that is behind
holds uploads here as it holds the in-process media socket's (engine/server/upload_gate.py),
first come first served; one whose socket closed meanwhile is dropped, not recorded.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from engine import wire
from engine.detection import Finding
from engine.exceptions import ExamhallError, RequestError
from engine.fixation import Kind
from engine.server import keys
from engine.server import media_pipe as pipe
from engine.server.hall import Hall, LiveSitting
from engine.server.media_socket import open_sitting
from engine.server.uploads import Refusal, Unfit, refuse_unfit, take_placed
from engine.store.file_process import Appended

log = logging.getLogger("examhall.media_link")

READY_WITHIN_S = 30.0
RESTART_AFTER_S = 1.0
STOP_WITHIN_S = 10.0


class MediaLink:
    def __init__(self, app: web.Application, host: str, port: int, *, nice: int = 5) -> None:
        self.app = app
        self.host = host
        self.asked_port = port
        self.nice = nice
        self.port: int | None = None
        """The port the media process listens on, once it said so."""
        self.started = 0
        self.listening = False
        """The media process now running said READY (pages can connect)."""
        self.reported: dict[str, Any] = {}
        """The media process's own counters, as it last sent them."""
        self._process: asyncio.subprocess.Process | None = None
        self._pipe: pipe.Pipe | None = None
        self._handles: dict[int, tuple[str, str]] = {}
        """Open media sockets: handle → (token, part)."""
        self._next_handle = 0
        self._keeper: asyncio.Task[None] | None = None
        self._answering: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def sockets(self) -> int:
        """Media sockets open and greeted, as of the last message from the media process."""
        return len(self._handles)

    def stats(self) -> dict[str, Any]:
        return {
            "running": self._process is not None and self._process.returncode is None,
            "pid": self._process.pid if self._process is not None else None,
            "port": self.port,
            "listening": self.listening,
            "started": self.started,
            "answering": len(self._answering),
            "greeted": len(self._handles),
        } | self.reported

    async def start(self) -> None:
        """Start the media process; return once it listens (or raise `ExamhallError`)."""
        ready = asyncio.get_running_loop().create_future()
        self._keeper = asyncio.create_task(self._keep(ready))
        try:
            await asyncio.wait_for(asyncio.shield(ready), READY_WITHIN_S)
        except TimeoutError:
            await self.stop()
            raise ExamhallError(
                f"the media process could not listen on {self.host}:{self.asked_port} "
                f"within {READY_WITHIN_S:.0f} s (its log says why)"
            ) from None

    async def stop(self) -> None:
        """Have the media process close its sockets and finish; answer it until it exits."""
        self._stopping = True
        process, link = self._process, self._pipe
        if process is not None and link is not None and process.returncode is None:
            link.send([pipe.STOP])
            try:
                await asyncio.wait_for(process.wait(), STOP_WITHIN_S)
            except TimeoutError:
                log.error("the media process did not stop in time; killed")
                process.kill()
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        await asyncio.gather(*self._answering, return_exceptions=True)

    async def _keep(self, ready: asyncio.Future[None]) -> None:
        """Run the media process, and run it again after it died."""
        while not self._stopping:
            port = self.port if self.port is not None else self.asked_port
            try:
                exit_code = await self._run_once(port, ready)
            except OSError as error:
                log.error("could not start the media process: %s", error)
                exit_code = None
            if self._stopping:
                return
            if not ready.done():
                # Its port may still be held by one that is finishing (a server restarted at
                # once): tried again until `start` gives up.
                log.warning("the media process ended before it listened (exit code %s)", exit_code)
            else:
                log.error("the media process ended (exit code %s); starting it again", exit_code)
            self._handles.clear()
            await asyncio.sleep(RESTART_AFTER_S)

    async def _run_once(self, port: int, ready: asyncio.Future[None]) -> int:
        config = self.app[keys.CONFIG]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "engine.server.media_process",
            "--data",
            str(config.data_dir),
            "--host",
            self.host,
            "--port",
            str(port),
            "--hello-timeout",
            str(config.hello_timeout_s),
            "--quiet",
            str(config.media_quiet_s),
            "--nice",
            str(self.nice),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        self.started += 1
        assert process.stdin is not None and process.stdout is not None
        link = pipe.Pipe(process.stdout, process.stdin)
        self._process, self._pipe = process, link
        async for message in link.messages():
            kind = message[0]
            if kind == pipe.READY:
                self.port, self.listening = message[1], True
                log.info("media process %d serves media sockets on port %s", process.pid, self.port)
                if not ready.done():
                    ready.set_result(None)
            elif kind == pipe.STATS:
                self.reported = message[1]
            elif kind == pipe.LEAVE:
                self._handles.pop(message[1], None)
            else:
                work = self._note(message) if kind == pipe.FOUND else self._answer(link, message)
                task = asyncio.create_task(work)
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)
        self.listening = False
        return await process.wait()

    async def _answer(self, link: pipe.Pipe, message: list[Any]) -> None:
        request_id = message[1]
        try:
            reply = await self._decide(message)
        except RequestError as error:
            close_code = error.close_code or wire.CloseCode.PROTOCOL
            reply = [pipe.FATAL, error.code, error.message, close_code]
        except Exception:
            log.exception("answering the media process failed")
            reply = [
                pipe.FATAL,
                "server_error",
                "the server failed; send again what was not stored",
                wire.CloseCode.SERVER_ERROR,
            ]
        link.send([reply[0], request_id, *reply[1:]])

    async def _note(self, message: list[Any]) -> None:
        """A detector in the media process found something in a socket's levels."""
        _, handle, source, kind, detail, severity = message
        try:
            live = await self._sitting_of(handle)
            if live is not None:
                await self._hall.note(live, Finding(kind, detail, severity), source)
        except RequestError:
            pass  # the token or the sitting is no longer valid: there is nothing to note it on
        except ExamhallError:
            log.exception("noting what a detector found failed")

    async def _decide(self, message: list[Any]) -> list[Any]:
        kind = message[0]
        if kind == pipe.GREET:
            _, _, token, part = message
            await open_sitting(self._hall, token, part)
            self._next_handle += 1
            self._handles[self._next_handle] = (token, part)
            return [pipe.GREETED, self._next_handle]
        if kind == pipe.PLACE:
            return await self._place(*message[2:])
        if kind == pipe.UNFIT:
            return await self._refuse_unfit(*message[2:])
        raise RequestError(f"the media process sent {kind!r}", code="bad_request")

    async def _place(
        self,
        handle: int,
        kind: str,
        seq: int,
        media_type: str,
        client_time: float | None,
        size: int,
        segment: str,
        offset: int,
        digest: bytes,
    ) -> list[Any]:
        live = await self._sitting_of(handle)
        if live is None:
            return [pipe.DROPPED]
        self._hall.media_heard(live)
        app = self.app
        uploads = app[keys.UPLOADS]
        await app[keys.UPLOAD_GATE].take_turn(uploads, app[keys.LOOP_LAG])
        if handle not in self._handles:
            return [pipe.DROPPED]  # its page gave up waiting; it sends the upload again
        with uploads.one():
            taken = await take_placed(
                self._hall,
                live,
                Kind(kind),
                seq,
                media_type,
                client_time,
                size,
                Appended(segment, offset, digest),
            )
        if isinstance(taken, Refusal):
            return [pipe.REFUSED, taken.status, taken.code, taken.message]
        return [pipe.STORED, taken.seq, taken.sha256, taken.size, taken.server_time]

    async def _refuse_unfit(
        self,
        handle: int,
        kind: str,
        seq: int,
        status: int,
        code: str,
        message: str,
        finding_kind: str | None,
        finding_detail: str | None,
        severity: int,
    ) -> list[Any]:
        live = await self._sitting_of(handle)
        if live is None:
            return [pipe.DROPPED]
        finding = (
            Finding(finding_kind, finding_detail or "", severity)
            if finding_kind is not None
            else None
        )
        refusal = await refuse_unfit(
            self._hall, live, Unfit(Refusal(status, code, message), finding)
        )
        return [pipe.REFUSED, refusal.status, refusal.code, refusal.message]

    async def _sitting_of(self, handle: int) -> LiveSitting | None:
        """The open sitting of a greeted socket, checked again as every upload is; None if
        the socket closed already."""
        greeted = self._handles.get(handle)
        if greeted is None:
            return None
        return await open_sitting(self._hall, *greeted)

    @property
    def _hall(self) -> Hall:
        return self.app[keys.HALL]


async def running_media_process(app: web.Application) -> AsyncIterator[None]:
    """For `create_app`: the media process while the application runs."""
    config = app[keys.CONFIG]
    assert config.media_port is not None
    link = MediaLink(app, config.media_host, config.media_port, nice=config.media_nice)
    await link.start()
    app[keys.MEDIA_LINK] = link
    try:
        yield
    finally:
        await link.stop()
