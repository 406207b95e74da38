"""Fixtures: a real examhall server on a real port, with its data directory and codes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from engine.client import CandidateClient, sign_in
from engine.server import keys
from engine.server.app import create_app
from engine.server.config import ServerConfig
from engine.server.hall import Hall
from tests.e2e.harness import Codes, write_test_catalog


@dataclass
class Running:
    server: TestServer
    config: ServerConfig

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def app(self) -> web.Application:
        return self.server.app

    @property
    def hall(self) -> Hall:
        return self.app[keys.HALL]

    def codes(self, exam_id: str = "t-exam") -> Codes:
        return Codes.read(self.config.data_dir, exam_id)

    async def candidate(
        self, exam_id: str = "t-exam", part: str = "main", codes: Codes | None = None
    ) -> tuple[CandidateClient, dict[str, Any]]:
        """A signed-in candidate's client, connected (checked in, not started)."""
        _, code = codes.take() if codes else self._fresh_code(exam_id)
        signed = await sign_in(self.url, code)
        client = CandidateClient(self.url, signed["token"], part)
        await client.connect()
        return client, signed

    def _fresh_code(self, exam_id: str) -> tuple[str, str]:
        used = self._used.setdefault(exam_id, set())
        for candidate_id, code in self.codes(exam_id).rows:
            if candidate_id not in used:
                used.add(candidate_id)
                return candidate_id, code
        raise RuntimeError("no unused code left")

    def __post_init__(self) -> None:
        self._used: dict[str, set[str]] = {}


@pytest.fixture
def catalog(tmp_path: Path) -> tuple[Path, Path]:
    return write_test_catalog(tmp_path)


@pytest.fixture
async def start_server(
    tmp_path: Path, catalog: tuple[Path, Path]
) -> AsyncIterator[Callable[..., Awaitable[Running]]]:
    servers: list[TestServer] = []

    async def start(**overrides: Any) -> Running:
        banks, exams = catalog
        settings: dict[str, Any] = {"banks_dir": banks, "exams_dir": exams, **overrides}
        schemes = settings.pop("schemes", None)
        config = ServerConfig(data_dir=tmp_path / "data", **settings)
        server = TestServer(create_app(config, schemes=schemes), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return Running(server, config)

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def running(start_server: Callable[..., Awaitable[Running]]) -> Running:
    return await start_server()
