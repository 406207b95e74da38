"""The application factory: `create_app(config)` wires the store, the hall and the routes."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import os
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from engine import wire
from engine.banks import load_banks
from engine.exams import ExamSetup, load_exams
from engine.model import Candidate
from engine.plugins import SchemeRegistry, create_plugin_manager
from engine.resources import web_client_dir
from engine.server import keys, rest
from engine.server.auth import TokenIssuer, hash_code, new_access_code
from engine.server.candidate_socket import candidate_socket
from engine.server.config import ServerConfig
from engine.server.hall import ExamRuntime, Hall
from engine.store.base import Store
from engine.store.sqlite import SQLiteStore

log = logging.getLogger("examhall.app")


def create_app(config: ServerConfig, *, schemes: SchemeRegistry | None = None) -> web.Application:
    app = web.Application(client_max_size=1024**2)
    app[keys.CONFIG] = config
    app[keys.SOCKETS] = weakref.WeakSet()
    app.cleanup_ctx.append(_store_and_hall(schemes))
    app.cleanup_ctx.append(_ticker)
    app.on_shutdown.append(_close_sockets)
    app.router.add_get("/ws/candidate", candidate_socket)
    app.router.add_routes(rest.routes)
    web_dir = web_client_dir()
    if web_dir.is_dir():
        app.router.add_get("/", _index)
        app.router.add_static("/static/", web_dir, follow_symlinks=False)
    return app


async def _index(request: web.Request) -> web.StreamResponse:
    page = web_client_dir() / "index.html"
    if not page.exists():
        raise web.HTTPNotFound(text="the web client is not installed")
    return web.FileResponse(page)


def _store_and_hall(schemes: SchemeRegistry | None):  # type: ignore[no-untyped-def]
    async def context(app: web.Application) -> AsyncIterator[None]:
        config = app[keys.CONFIG]
        store = SQLiteStore(config.data_dir)
        await store.open()
        app[keys.STORE] = store
        registry = schemes or SchemeRegistry(create_plugin_manager())
        runtimes = await load_runtimes(config, store)
        tokens = TokenIssuer(await store.server_secret(), config.token_ttl_s)
        hall = Hall(store, runtimes, registry, tokens)
        app[keys.HALL] = hall
        restored = await hall.restore()
        log.info("exams %s loaded; %d open sittings taken up", sorted(runtimes), restored)
        yield
        await hall.shutdown()
        await store.close()

    return context


async def load_runtimes(config: ServerConfig, store: Store) -> dict[str, ExamRuntime]:
    banks = load_banks(config.banks_dir)
    setups = load_exams(config.exams_dir, banks)
    runtimes = {}
    for exam_id, setup in sorted(setups.items()):
        secret = await register_exam(config.data_dir, store, setup)
        runtimes[exam_id] = ExamRuntime(
            exam=setup.exam,
            banks={part.id: banks[part.bank_id] for part in setup.exam.parts},
            candidates={candidate.id: candidate for candidate in setup.candidates},
            secret=secret,
        )
    return runtimes


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


async def _ticker(app: web.Application) -> AsyncIterator[None]:
    """Every few seconds, the server's clock to every running candidate."""
    hall = app[keys.HALL]
    interval = app[keys.CONFIG].tick_interval_s

    async def run() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await hall.tick()
            except Exception:
                log.exception("clock tick failed")

    task = asyncio.create_task(run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_sockets(app: web.Application) -> None:
    sockets: weakref.WeakSet[web.WebSocketResponse] = app[keys.SOCKETS]
    for ws in list(sockets):
        await ws.close(code=wire.CloseCode.GOING_AWAY, message=b"server shutting down")
