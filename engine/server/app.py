"""The application factory: `create_app(config)` wires the store, the hall and the routes."""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from engine import wire
from engine.banks import load_banks
from engine.detection import DetectorRegistry, with_detectors
from engine.exams import ExamSetup, load_exams
from engine.fixation import MAX_CHUNK_BYTES
from engine.latency import LoopLag, Uploads
from engine.model import Candidate
from engine.offline import hold_data_dir
from engine.plugins import SchemeRegistry, create_plugin_manager
from engine.resources import web_client_dir
from engine.server import keys, media, rest, results_api
from engine.server.auth import TokenIssuer, hash_code, hash_password, new_access_code, new_password
from engine.server.candidate_socket import candidate_socket
from engine.server.config import ServerConfig
from engine.server.hall import ExamRuntime, Hall
from engine.server.media_link import running_media_process
from engine.server.media_socket import media_socket
from engine.server.proctor_socket import proctor_socket
from engine.server.quiet_sockets import QuietSockets
from engine.server.upload_gate import UploadGate
from engine.store.base import Store
from engine.store.proctoring import ProctoringRecords
from engine.store.sqlite import SQLiteStore

log = logging.getLogger("examhall.app")


def create_app(config: ServerConfig, *, schemes: SchemeRegistry | None = None) -> web.Application:
    app = web.Application(client_max_size=MAX_CHUNK_BYTES + 64 * 1024)
    app[keys.CONFIG] = config
    app[keys.SOCKETS] = weakref.WeakSet()
    app[keys.LOOP_LAG] = LoopLag(warn_s=0.2)
    app[keys.UPLOADS] = Uploads()
    app[keys.UPLOAD_GATE] = UploadGate(most_at_once=config.uploads_at_once)
    app[keys.QUIET_MEDIA] = QuietSockets(config.media_quiet_s)
    app.cleanup_ctx.append(_store_and_hall(schemes))
    app.cleanup_ctx.append(_background)
    if config.media_port is not None:
        app.cleanup_ctx.append(running_media_process)
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/ws/candidate", candidate_socket)
    app.router.add_get("/ws/proctor", proctor_socket)
    app.router.add_get("/ws/media", media_socket)
    app.router.add_routes(rest.routes)
    app.router.add_routes(media.routes)
    app.router.add_routes(results_api.routes)
    web_dir = web_client_dir()
    if web_dir.is_dir():
        app.router.add_get("/", _index)
        app.router.add_get("/proctor", _proctor_page)
        app.router.add_static("/static/", web_dir, follow_symlinks=False)
    return app


async def _index(request: web.Request) -> web.StreamResponse:
    page = web_client_dir() / "index.html"
    if not page.exists():
        raise web.HTTPNotFound(text="the web client is not installed")
    return web.FileResponse(page)


async def _proctor_page(request: web.Request) -> web.StreamResponse:
    """The proctor's and observer's dashboard (clients/web/proctor.html)."""
    page = web_client_dir() / "proctor.html"
    if not page.exists():
        raise web.HTTPNotFound(text="the web client is not installed")
    return web.FileResponse(page)


def _store_and_hall(schemes: SchemeRegistry | None):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        config = app[keys.CONFIG]
        lock = hold_data_dir(config.data_dir)
        store = SQLiteStore(config.data_dir)
        try:
            await store.open()
            app[keys.STORE] = store
            records = ProctoringRecords(store)
            await records.open()
            manager = with_detectors(create_plugin_manager())
            registry = schemes or SchemeRegistry(manager)
            runtimes = await load_runtimes(config, store, records)
            tokens = TokenIssuer(await store.server_secret(), config.token_ttl_s)
            for (exam_id, candidate_id), at in (await store.replaced_tokens()).items():
                tokens.replace_before(exam_id, candidate_id, at)
            hall = Hall(store, runtimes, registry, tokens, detectors=DetectorRegistry(manager))
            hall.records = records
            app[keys.HALL] = hall
            restored = await hall.restore()
            log.info("exams %s loaded; %d open sittings taken up", sorted(runtimes), restored)
            yield
            await hall.shutdown()
        finally:
            await store.close()
            lock.release()

    return context


async def load_runtimes(
    config: ServerConfig, store: Store, records: ProctoringRecords
) -> dict[str, ExamRuntime]:
    banks = load_banks(config.banks_dir)
    setups = load_exams(config.exams_dir, banks)
    runtimes = {}
    for exam_id, setup in sorted(setups.items()):
        secret = await register_exam(config.data_dir, store, setup)
        await register_staff(config.data_dir, records, setup)
        runtimes[exam_id] = ExamRuntime(
            exam=setup.exam,
            banks={part.id: banks[part.bank_id] for part in setup.exam.parts},
            candidates={candidate.id: candidate for candidate in setup.candidates},
            secret=secret,
            staff={member.login: member for member in setup.staff},
        )
    return runtimes


async def register_staff(data_dir: Path, records: ProctoringRecords, setup: ExamSetup) -> None:
    """Give new staff passwords (written to a file first, stored only as scrypt hashes)."""
    known = await records.known_staff(setup.exam.id)
    newcomers = [member for member in setup.staff if member.login not in known]
    if not newcomers:
        return
    passwords = {member.login: new_password() for member in newcomers}
    path = rest.staff_file(data_dir, setup.exam.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    is_new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if is_new:
            writer.writerow(["login", "name", "role", "sites", "password"])
        for member in newcomers:
            writer.writerow(
                [
                    member.login,
                    member.name,
                    member.role.value,
                    " ".join(member.sites),
                    passwords[member.login],
                ]
            )
        handle.flush()
        os.fsync(handle.fileno())
    hashes = {
        login: await asyncio.to_thread(hash_password, password)
        for login, password in passwords.items()
    }
    await records.register_staff(newcomers, hashes)


async def register_exam(data_dir: Path, store: Store, setup: ExamSetup) -> bytes:
    """Give new candidates access codes (written to a file first), then register the exam."""
    known = await store.known_candidates(setup.exam.id)
    newcomers = [c for c in setup.candidates if c.id not in known]
    codes = {candidate.id: new_access_code() for candidate in newcomers}
    if codes:
        _append_codes(rest.codes_file(data_dir, setup.exam.id), newcomers, codes)
    hashes = {candidate_id: hash_code(code) for candidate_id, code in codes.items()}
    return await store.register_exam(setup.exam.id, setup.candidates, hashes)


def _append_codes(path: Path, candidates: list[Candidate], codes: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    is_new = not path.exists()
    with path.open("a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if is_new:
            writer.writerow(["candidate", "full_name", "site", "code"])
        for candidate in candidates:
            writer.writerow(
                [candidate.id, candidate.full_name, candidate.site_id, codes[candidate.id]]
            )
        handle.flush()
        os.fsync(handle.fileno())


async def _background(app: web.Application) -> AsyncIterator[None]:
    """The clock ticks, the proctors' feed, the loop-lag sleeper and media retention."""
    hall = app[keys.HALL]
    config = app[keys.CONFIG]

    async def ticks() -> None:
        while True:
            await asyncio.sleep(config.clock_check_s)
            try:
                await hall.tick(config.tick_interval_s)
            except Exception:
                log.exception("clock tick failed")

    async def retention() -> None:
        assert config.media_retention_days is not None and hall.records is not None
        while True:
            cutoff = hall.now() - config.media_retention_days * 86400
            try:
                purged = await hall.records.purge_closed_before(cutoff, hall.now())
                if purged:
                    log.info("media retention: %d files of closed sittings deleted", purged)
            except Exception:
                log.exception("media retention failed")
            await asyncio.sleep(3600)

    tasks = [
        asyncio.create_task(ticks()),
        asyncio.create_task(hall.board.run(config.feed_interval_s)),
        asyncio.create_task(app[keys.LOOP_LAG].run()),
        asyncio.create_task(app[keys.QUIET_MEDIA].run()),
    ]
    if config.media_retention_days is not None:
        tasks.append(asyncio.create_task(retention()))
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _close_sockets(app: web.Application) -> None:
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[keys.SOCKETS]
    for ws in list(sockets):
        await ws.close(code=wire.CloseCode.GOING_AWAY, message=b"server shutting down")
