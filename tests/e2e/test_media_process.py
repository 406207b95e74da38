"""The media process (engine/server/media_process.py): where the sign-in sends the page, what
it records, and what happens when it or its server dies. How it takes and refuses uploads is
tests/e2e/test_media_socket.py, which runs every case against it too."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from engine.client import CandidateClient, ClientError, MediaSocket, sign_in
from engine.fixation import sha256_hex, stored_bytes
from engine.server import keys
from tests.e2e.conftest import Running
from tests.e2e.harness import Codes, write_test_catalog
from tests.e2e.test_crash import ServerProcess, free_port

WEBM = b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8


@pytest.fixture
async def running(start_server: Callable[..., Awaitable[Running]]) -> Running:
    """A server with its media process, on any free port."""
    return await start_server(media_port=0)


async def recording(running: Running, language: str) -> tuple[CandidateClient, str, MediaSocket]:
    """A started candidate, its sitting and its media socket at the sign-in's address."""
    client, signed = await running.candidate()
    await client.start(language)
    sitting = client.view.welcome.sitting  # type: ignore[union-attr]
    socket = MediaSocket(client.base_url, client.token, client.part, url=signed["media_socket"])
    await socket.connect()
    return client, sitting, socket


async def test_the_sign_in_names_the_media_process_and_what_it_takes_is_recorded_and_journaled(
    running: Running,
) -> None:
    link = running.app[keys.MEDIA_LINK]
    _client, sitting, socket = await recording(running, "kk")
    address = urlsplit(socket.url)
    assert (address.scheme, address.hostname, address.port, address.path) == (
        "ws",
        "127.0.0.1",
        link.port,
        "/ws/media",
    )
    assert link.port != running.server.port

    first = await socket.send_chunk(1, WEBM, "video/webm", client_time=12.5)
    still = await socket.send_snapshot(b"\xff\xd8\xff\xe0" + bytes(64), "image/jpeg")
    await socket.close()

    records = await running.hall.media_records(sitting)
    assert [(r.kind.value, r.seq) for r in records] == [("chunk", 1), ("snapshot", 1)]
    chunk = records[0]
    assert (chunk.sha256, chunk.size, chunk.client_time) == (sha256_hex(WEBM), len(WEBM), 12.5)
    assert first.sha256 == chunk.sha256 and still.seq == 1
    assert stored_bytes(running.config.data_dir, chunk) == WEBM
    events = await running.hall.store.events_of(sitting)
    assert [e["kind"] for e in events if e["kind"].startswith("media-")] == [
        "media-chunk",
        "media-snapshot",
    ]
    health = running.app[keys.MEDIA_LINK].stats()
    assert health["running"] and health["started"] == 1
    for _ in range(50):  # the media process reports once a second
        if link.reported.get("appended", 0) >= 2:
            break
        await asyncio.sleep(0.1)
    syncs = link.stats()["recent_sync_ms"]
    assert syncs["samples"] == link.reported["syncs"] >= 1, "each batch written and synced is timed"
    assert 0 <= syncs["p50"] <= syncs["max"]


async def test_a_media_process_that_dies_is_started_again_on_its_port_and_pages_reconnect(
    running: Running,
) -> None:
    link = running.app[keys.MEDIA_LINK]
    client, sitting, socket = await recording(running, "ru")
    await socket.send_chunk(1, WEBM, "video/webm")
    port, pid = link.port, link.stats()["pid"]

    os.kill(pid, signal.SIGKILL)
    with pytest.raises((ClientError, ConnectionError, OSError)):
        await socket.send_chunk(2, b"lost with the process", "video/webm")
    await socket.close()
    deadline = time.monotonic() + 20
    while not (link.started == 2 and link.listening and link.port == port):
        assert time.monotonic() < deadline, "the media process was not started again"
        await asyncio.sleep(0.05)

    again = MediaSocket(client.base_url, client.token, client.part, url=socket.url)
    await again.connect()
    stored = await again.send_chunk(2, b"sent again", "video/webm")
    await again.close()
    assert stored.seq == 2
    assert [r.seq for r in await running.hall.media_records(sitting)] == [1, 2]
    answered = await client.answer(client.view.form.items[0].id, 0)  # type: ignore[union-attr]
    assert answered is not None, "the candidate's own socket never noticed"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    banks, _ = write_test_catalog(tmp_path)
    process = ServerProcess(tmp_path / "data", banks, free_port())
    process.start()
    yield process
    process.stop()


def media_pid(server: ServerProcess) -> int:
    with urllib.request.urlopen(f"{server.url}/api/v1/health", timeout=5) as reply:
        return int(json.load(reply)["media_process"]["pid"])


def ended_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True  # ended; its new parent has not collected it yet
        time.sleep(0.05)
    return False


async def test_examhall_serve_runs_a_media_process_that_ends_with_it_even_when_killed(
    server: ServerProcess,
) -> None:
    signed = await sign_in(server.url, Codes.read(server.data, "t-exam").take()[1])
    assert urlsplit(signed["media_socket"]).port == server.port + 1, "--port + 1 by default"
    pid = media_pid(server)
    server.kill()  # SIGKILL: nothing tells the media process but the end of its pipe
    assert ended_within(pid, 10), "the media process outlived its server"

    server.start()  # on the same ports at once
    again = media_pid(server)
    assert again != pid
    server.stop()  # SIGTERM: stopped in order
    assert ended_within(again, 10)
