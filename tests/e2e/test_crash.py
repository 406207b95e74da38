"""Kill the server with SIGKILL while candidates answer; every acknowledged answer survives.

The server runs as a real process on a real port. After the kill a deadline passes while it is
down; the restarted server must close that sitting at its deadline, keep every other deadline,
and let every candidate resume with all acknowledged answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import journal
from engine.client import CandidateClient, ClientError, sign_in
from engine.store.sqlite import SQLiteStore, read_journal
from tests.e2e.harness import Codes, write_test_catalog

SHORT_SECONDS = 6


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    def __init__(self, data: Path, banks: Path, port: int) -> None:
        self.data, self.banks, self.port = data, banks, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.cli",
                "serve",
                "--data",
                str(self.data),
                "--banks",
                str(self.banks),
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=1).close()
                return
            time.sleep(0.1)
        raise RuntimeError("the server did not come up")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    banks, _ = write_test_catalog(tmp_path, short_seconds=SHORT_SECONDS)
    process = ServerProcess(tmp_path / "data", banks, free_port())
    process.start()
    yield process
    process.stop()


async def keep_answering(client: CandidateClient, stop: asyncio.Event) -> None:
    form = client.view.form
    assert form is not None
    n = 0
    with contextlib.suppress(ClientError):
        while not stop.is_set():
            item = form.items[n % len(form.items)]
            await client.answer(item.id, n % len(item.options))
            n += 1


async def test_sigkill_loses_no_acknowledged_answer_and_no_deadline(server: ServerProcess) -> None:
    codes = Codes.read(server.data, "t-exam")
    clients = []
    for _ in range(12):
        signed = await sign_in(server.url, codes.take()[1])
        client = CandidateClient(server.url, signed["token"], "main")
        await client.connect()
        await client.start("kk")
        clients.append(client)
    short_signed = await sign_in(server.url, Codes.read(server.data, "t-short").take()[1])
    short = CandidateClient(server.url, short_signed["token"], "main")
    await short.connect()
    await short.start("ru")
    deadlines = {c.view.welcome.sitting: c.view.clock.deadline for c in clients}  # type: ignore[union-attr]
    short_deadline = short.view.clock.deadline  # type: ignore[union-attr]
    assert short_deadline is not None

    stop = asyncio.Event()
    workers = [asyncio.create_task(keep_answering(c, stop)) for c in [*clients, short]]
    await asyncio.sleep(1.5)
    server.kill()
    stop.set()
    await asyncio.gather(*workers)
    acked = {
        (c.view.welcome.sitting, seq): a
        for c in [*clients, short]  # type: ignore[union-attr]
        for seq, a in c.acked.items()
    }
    assert len(acked) > 100, "the candidates got answers acknowledged before the kill"

    await asyncio.sleep(max(0.0, short_deadline - time.time() + 0.5))  # passes while down
    server.start()

    with sqlite3.connect(server.data / SQLiteStore.FILE_NAME) as connection:
        stored = {
            (sitting, seq): item
            for sitting, seq, item in connection.execute(
                "SELECT sitting_id, seq, item_id FROM answers"
            )
        }
        sittings = {
            row[0]: row[1:]
            for row in connection.execute(
                "SELECT id, state, started_at + time_limit_s + extra_s + paused_total_s, closed_at "
                "FROM sittings"
            )
        }
    missing = [key for key, answer in acked.items() if stored.get(key) != answer.item]
    assert missing == [], f"{len(missing)} acknowledged answers lost"
    for sitting_id, deadline in deadlines.items():
        state, stored_deadline, _ = sittings[sitting_id]
        assert state == "running" and stored_deadline == pytest.approx(deadline)
    short_state, _, closed_at = sittings[short.view.welcome.sitting]  # type: ignore[union-attr]
    assert short_state == "expired" and closed_at == pytest.approx(short_deadline)

    for client in clients:
        welcome = await client.resume()
        held = {a.item: a.seq for a in welcome.answers}
        latest_acked: dict[str, int] = {}
        for seq, answer in sorted(client.acked.items()):
            latest_acked[answer.item] = seq
        assert set(held) == set(latest_acked)
        assert all(held[item] >= seq for item, seq in latest_acked.items())
        assert welcome.next_seq > max(client.acked, default=0)
        assert abs(welcome.remaining_ms / 1000 - (deadlines[welcome.sitting] - time.time())) < 2
        await client.close()
    with pytest.raises(ClientError) as closed:
        await short.resume()
    assert closed.value.code == "sitting_closed"

    verdict = journal.verify(
        read_journal(server.data / SQLiteStore.FILE_NAME), journal.read_head(server.data)
    )
    assert verdict.events > len(acked)
