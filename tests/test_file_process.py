"""The file process: durable writes in a child, its failures, its end (a real child process)."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import random
import signal
from pathlib import Path

import pytest

from engine.exceptions import StoreError
from engine.store import file_child
from engine.store.file_process import FileProcess, Written


async def _write(files: FileProcess, path: Path, data: bytes) -> Written:
    outcome: asyncio.Future[Written] = asyncio.get_running_loop().create_future()
    await files.write(str(path), data, outcome.set_result)
    return await outcome


async def test_writes_of_every_size_arrive_whole_with_their_digests(tmp_path: Path) -> None:
    files = FileProcess()
    rng = random.Random(7)
    payloads = [rng.randbytes(size) for size in (0, 1, 2047, 2048, 65_537, 4 * 1024 * 1024)]
    payloads += [rng.randbytes(rng.randrange(1, 40_000)) for _ in range(100)]
    outcomes = await asyncio.gather(
        *(_write(files, tmp_path / f"f{n}", data) for n, data in enumerate(payloads))
    )
    await files.stop()
    for n, (data, outcome) in enumerate(zip(payloads, outcomes, strict=True)):
        assert outcome == hashlib.sha256(data).digest()
        assert (tmp_path / f"f{n}").read_bytes() == data


async def test_a_refused_write_names_its_path_and_the_process_serves_on(tmp_path: Path) -> None:
    files = FileProcess()
    (tmp_path / "a-file").write_bytes(b"")
    under_a_file = tmp_path / "a-file" / "chunk"
    refused = await _write(files, under_a_file, b"data")
    assert isinstance(refused, NotADirectoryError)
    assert refused.filename == str(under_a_file)
    assert await _write(files, tmp_path / "next", b"next") == hashlib.sha256(b"next").digest()
    assert (files.stats()["refused"], files.stats()["written"]) == (1, 1)
    await files.stop()


async def test_a_write_into_missing_folders_makes_them(tmp_path: Path) -> None:
    files = FileProcess()
    deep = tmp_path / "media" / "exam" / "candidate" / "part" / "chunk-000001.webm"
    assert await _write(files, deep, b"first") == hashlib.sha256(b"first").digest()
    assert deep.read_bytes() == b"first"
    beside = deep.with_name("chunk-000002.webm")  # the folder is there now
    assert await _write(files, beside, b"second") == hashlib.sha256(b"second").digest()
    assert files.stats()["written"] == 2
    await files.stop()


async def test_a_child_that_dies_fails_what_it_held_and_the_next_write_starts_another(
    tmp_path: Path,
) -> None:
    files = FileProcess()
    stuck = tmp_path / "fifo"
    os.mkfifo(stuck)  # opening it for writing blocks until a reader comes: the write never ends
    outcomes: list[Written] = []
    await files.write(str(stuck), b"never", outcomes.append)
    await files.write(str(tmp_path / "queued"), b"queued", outcomes.append)
    child = files._child
    assert child is not None
    await asyncio.sleep(0.2)
    assert outcomes == [], "the child is stuck on the pipe"
    child.process.kill()
    assert child.reader is not None
    await child.reader
    assert len(outcomes) == 2
    for failure in outcomes:
        assert isinstance(failure, StoreError)
        assert "exit code -9" in str(failure)
    assert "queued" in str(outcomes[1])
    assert files.stats() == {
        "running": False,
        "unanswered": 0,
        "started": 1,
        "written": 0,
        "refused": 0,
        "lost_with_a_child": 2,
    }
    assert await _write(files, tmp_path / "after", b"after") == hashlib.sha256(b"after").digest()
    assert files._child is not child
    assert files.stats()["started"] == 2 and files.stats()["written"] == 1
    await files.stop()


async def test_a_failing_hand_on_is_logged_and_the_others_still_get_theirs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = FileProcess()

    def broken(outcome: Written) -> None:
        raise RuntimeError("caller's bug")

    with caplog.at_level(logging.ERROR, logger="examhall.store"):
        await files.write(str(tmp_path / "a"), b"a", broken)
        assert await _write(files, tmp_path / "b", b"b") == hashlib.sha256(b"b").digest()
        await files.stop()
    assert (tmp_path / "a").read_bytes() == b"a"
    assert "handing on a file write's outcome failed" in caplog.text
    assert "caller's bug" in caplog.text


async def test_stop_lets_the_child_finish_and_exit(tmp_path: Path) -> None:
    files = FileProcess()
    await files.stop()  # never started: nothing to do
    outcomes: list[Written] = []
    for n in range(50):
        await files.write(str(tmp_path / f"f{n}"), b"x" * n, outcomes.append)
    child = files._child
    assert child is not None
    await files.stop()
    assert len(outcomes) == 50 and all(isinstance(outcome, bytes) for outcome in outcomes)
    assert child.process.returncode == 0


def _request(request_id: int, path: str, data: bytes, flags: int = 0) -> bytes:
    encoded = os.fsencode(path)
    return file_child.REQUEST.pack(request_id, len(data), len(encoded), flags) + encoded + data


def test_requests_split_anywhere_are_put_back_together() -> None:
    stream = _request(1, "/a", b"first") + _request(2, "/b", b"", file_child.EXCLUSIVE)
    stream += _request(3, "/c", bytes(range(256)) * 10)
    for cut in range(len(stream) + 1):
        requests = file_child.Requests()
        requests.feed(stream[:cut])
        taken = requests.take()
        requests.feed(stream[cut:])
        taken += requests.take()
        assert [(r.request_id, r.path, r.data, r.exclusive) for r in taken] == [
            (1, "/a", b"first", False),
            (2, "/b", b"", True),
            (3, "/c", bytes(range(256)) * 10, False),
        ]
        assert not requests.cut_off
    requests = file_child.Requests()
    requests.feed(stream[:-1])
    requests.take()
    assert requests.cut_off, "the last request is not whole"


def test_a_batch_answers_every_request_and_an_exclusive_one_leaves_a_file_alone(
    tmp_path: Path,
) -> None:
    kept = tmp_path / "kept"
    kept.write_bytes(b"kept")
    batch = [
        file_child.Request(1, str(tmp_path / "new"), b"new", True),
        file_child.Request(2, str(kept), b"other", True),
        file_child.Request(3, str(kept / "x"), b"x", False),  # under a file: refused
        file_child.Request(4, str(kept.with_name("again")), b"again", False),
    ]
    replies = file_child.write_all(batch)
    outcomes = {}
    while replies:
        request_id, code, digest, size = file_child.REPLY.unpack_from(replies)
        end = file_child.REPLY.size + size
        outcomes[request_id] = (code, digest, replies[file_child.REPLY.size : end].decode())
        replies = replies[end:]
    assert outcomes[1] == (0, hashlib.sha256(b"new").digest(), "")
    assert outcomes[2][0] == errno.EEXIST and kept.read_bytes() == b"kept"
    assert outcomes[3][0] == errno.ENOTDIR and outcomes[3][2]
    assert outcomes[4] == (0, hashlib.sha256(b"again").digest(), "")
    assert (tmp_path / "new").read_bytes() == b"new"


async def test_the_child_outlives_a_stop_signal_to_its_group_until_its_input_ends(
    tmp_path: Path,
) -> None:
    files = FileProcess()
    assert await _write(files, tmp_path / "a", b"a") == hashlib.sha256(b"a").digest()
    child = files._child
    assert child is not None
    child.process.send_signal(signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
    child.process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    assert child.process.returncode is None
    assert await _write(files, tmp_path / "b", b"b") == hashlib.sha256(b"b").digest()
    await files.stop()
    assert child.process.returncode == 0
