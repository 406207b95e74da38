"""Servers under test as subprocesses: the engine (`examhall serve`) and the bare ceiling.

Each runs as its own process on 127.0.0.1 with a free port, so its CPU and memory can be read
from /proc and nothing of the load generator's shares its interpreter.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.catalog import write_catalog

HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def _raise_file_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Server:
    """A running server process and where it lives."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    root: Path
    data_dir: Path | None = None
    banks_dir: Path | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> int:
        """Stop as an operator would (SIGINT: graceful shutdown), kill if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = (server.root / f"{server.name}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{log}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{server.url}/api/v1/health", timeout=5) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} did not answer /api/v1/health in {START_TIMEOUT_S} s")


def _spawn(name: str, args: list[str], root: Path) -> subprocess.Popen[bytes]:
    log = (root / f"{name}.log").open("wb")
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=_raise_file_limit,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def start_engine(
    root: Path,
    *,
    candidates: int,
    proctors: bool = False,
    name: str = "engine",
    media_process: bool = True,
) -> Server:
    """A fresh data directory and catalog under `root`, then `examhall serve` on it."""
    root.mkdir(parents=True, exist_ok=True)
    banks = write_catalog(root, candidates=candidates, proctors=proctors)
    data = root / "data"
    port = free_port()
    # BENCH_SERVER_PREFIX="CODE" runs the engine as `python -c CODE serve …` instead, to try a
    # setting without editing the engine (CODE must end by calling engine.cli.main(sys.argv[1:])).
    prefix = os.environ.get("BENCH_SERVER_PREFIX")
    args = [
        *(["-c", prefix] if prefix else ["-m", "engine.cli"]),
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--data",
        str(data),
        "--banks",
        str(banks),
        *(["--media-port", str(free_port())] if media_process else ["--media-in-process"]),
    ]
    server = Server(name, _spawn(name, args, root), f"http://{HOST}:{port}", root, data, banks)
    _wait_healthy(server)
    return server


def start_ceiling(root: Path, *, name: str = "ceiling") -> Server:
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = ["-m", "bench.ceiling", "--host", HOST, "--port", str(port)]
    server = Server(name, _spawn(name, args, root), f"http://{HOST}:{port}", root)
    _wait_healthy(server)
    return server
