"""The benchmark's bare ceiling server, run as the bench runs it: its own process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import msgpack
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def ceiling() -> AsyncIterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.ceiling", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"{url}/api/v1/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the ceiling server did not come up")
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)


async def test_it_acknowledges_answers_and_reads_levels_without_answering(ceiling: str) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{ceiling}/ws") as ws:
        levels = {"t": "levels", "start": 1.0, "interval_ms": 100, "values": [0.01] * 50}
        await ws.send_bytes(msgpack.packb(levels))
        for seq in (1, 2):
            answer = {"t": "answer", "seq": seq, "item": "po-001", "choice": 0}
            await ws.send_bytes(msgpack.packb(answer))
            ack = msgpack.unpackb(await ws.receive_bytes(timeout=5))
            assert ack == {"t": "ack", "seq": seq, "item": "po-001"}


async def test_a_chunk_is_acknowledged_with_its_number_size_and_hash(ceiling: str) -> None:
    data = os.urandom(3000)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{ceiling}/api/v1/media/part-1/chunk?seq=7&client_time=1.5",
            data=data,
            headers={"Content-Type": "video/webm"},
        ) as response,
    ):
        assert response.status == 200
        reply = await response.json()
    assert (reply["seq"], reply["size"]) == (7, 3000)
    assert reply["sha256"] == hashlib.sha256(data).hexdigest()
    assert isinstance(reply["server_time"], float)


async def test_a_chunk_on_the_media_socket_is_acknowledged_as_the_engine_does(
    ceiling: str,
) -> None:
    data = os.urandom(3000)
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{ceiling}/ws/media") as ws:
        await ws.send_bytes(msgpack.packb({"t": "hello", "v": 1, "token": "t", "part": "p"}))
        ready = msgpack.unpackb(await ws.receive_bytes(timeout=5))
        chunk = {"t": "chunk", "seq": 7, "type": "video/webm", "data": data}
        await ws.send_bytes(msgpack.packb(chunk, use_bin_type=True))
        stored = msgpack.unpackb(await ws.receive_bytes(timeout=5))
    assert ready["t"] == "media-ready"
    assert (stored["t"], stored["seq"], stored["size"]) == ("stored", 7, 3000)
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()
