"""The file process: durable appends to segments in a child, its failures, its end."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.exceptions import StoreError
from engine.store import file_child
from engine.store.file_process import Appended, FileProcess, Written


async def _append(files: FileProcess, data: bytes) -> Written:
    outcome: asyncio.Future[Written] = asyncio.get_running_loop().create_future()
    await files.append(data, outcome.set_result)
    return await outcome


def _read(folder: Path, appended: Written, size: int) -> bytes:
    assert isinstance(appended, Appended), appended
    with (folder / appended.segment).open("rb") as segment:
        segment.seek(appended.offset)
        return segment.read(size)


async def test_appends_of_every_size_arrive_whole_with_their_digests(tmp_path: Path) -> None:
    files = FileProcess(tmp_path)
    rng = random.Random(7)
    payloads = [rng.randbytes(size) for size in (0, 1, 2047, 2048, 65_537, 4 * 1024 * 1024)]
    payloads += [rng.randbytes(rng.randrange(1, 40_000)) for _ in range(100)]
    outcomes = await asyncio.gather(*(_append(files, data) for data in payloads))
    await files.stop()
    for data, outcome in zip(payloads, outcomes, strict=True):
        assert isinstance(outcome, Appended)
        assert outcome.digest == hashlib.sha256(data).digest()
        assert _read(tmp_path, outcome, len(data)) == data
    segments = {outcome.segment for outcome in outcomes if isinstance(outcome, Appended)}
    assert len(segments) == 1, "one child appends to one segment until it is full or old"
    assert os.path.getsize(tmp_path / segments.pop()) == sum(map(len, payloads))


async def test_a_refused_append_names_its_folder_and_the_process_serves_on(
    tmp_path: Path,
) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    folder = tmp_path / "a-file" / "segments"
    files = FileProcess(folder)
    refused = await _append(files, b"data")
    assert isinstance(refused, NotADirectoryError)
    assert refused.filename == str(folder)
    (tmp_path / "a-file").unlink()  # an operator puts it right: the folders are made
    appended = await _append(files, b"next")
    assert _read(folder, appended, 4) == b"next"
    assert (files.stats()["refused"], files.stats()["written"]) == (1, 1)
    await files.stop()


async def test_a_child_that_dies_fails_what_it_held_and_the_next_append_starts_another(
    tmp_path: Path,
) -> None:
    files = FileProcess(tmp_path)
    first = await _append(files, b"first")
    child = files._child
    assert child is not None
    child.process.send_signal(signal.SIGSTOP)  # it takes the next two and never answers
    outcomes: list[Written] = []
    await files.append(b"never", outcomes.append)
    await files.append(b"queued", outcomes.append)
    await asyncio.sleep(0.2)
    assert outcomes == []
    child.process.kill()
    assert child.reader is not None
    await child.reader
    assert len(outcomes) == 2
    for failure in outcomes:
        assert isinstance(failure, StoreError)
        assert "exit code -9" in str(failure)
    assert files.stats() == {
        "running": False,
        "unanswered": 0,
        "started": 1,
        "written": 1,
        "refused": 0,
        "lost_with_a_child": 2,
    }
    after = await _append(files, b"after")
    assert files._child is not child and files.stats()["started"] == 2
    assert isinstance(first, Appended) and isinstance(after, Appended)
    assert after.segment != first.segment, "a new child starts a new segment"
    assert _read(tmp_path, first, 5) == b"first" and _read(tmp_path, after, 5) == b"after"
    await files.stop()


async def test_a_failing_hand_on_is_logged_and_the_others_still_get_theirs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = FileProcess(tmp_path)

    def broken(outcome: Written) -> None:
        raise RuntimeError("caller's bug")

    with caplog.at_level(logging.ERROR, logger="examhall.store"):
        await files.append(b"a", broken)
        appended = await _append(files, b"b")
        await files.stop()
    assert _read(tmp_path, appended, 2) == b"b"
    assert "handing on a file write's outcome failed" in caplog.text
    assert "caller's bug" in caplog.text


async def test_stop_lets_the_child_finish_and_exit(tmp_path: Path) -> None:
    files = FileProcess(tmp_path)
    await files.stop()  # never started: nothing to do
    outcomes: list[Written] = []
    for n in range(50):
        await files.append(b"x" * n, outcomes.append)
    child = files._child
    assert child is not None
    await files.stop()
    assert len(outcomes) == 50 and all(isinstance(outcome, Appended) for outcome in outcomes)
    assert child.process.returncode == 0


async def test_the_child_outlives_a_stop_signal_to_its_group_until_its_input_ends(
    tmp_path: Path,
) -> None:
    files = FileProcess(tmp_path)
    assert isinstance(await _append(files, b"a"), Appended)
    child = files._child
    assert child is not None
    child.process.send_signal(signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
    child.process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    assert child.process.returncode is None
    assert isinstance(await _append(files, b"b"), Appended)
    await files.stop()
    assert child.process.returncode == 0


def _request(request_id: int, data: bytes) -> bytes:
    return file_child.REQUEST.pack(request_id, len(data)) + data


def test_requests_split_anywhere_are_put_back_together() -> None:
    stream = _request(1, b"first") + _request(2, b"") + _request(3, bytes(range(256)) * 10)
    for cut in range(len(stream) + 1):
        requests = file_child.Requests()
        requests.feed(stream[:cut])
        taken = requests.take()
        requests.feed(stream[cut:])
        taken += requests.take()
        assert [(r.request_id, r.data) for r in taken] == [
            (1, b"first"),
            (2, b""),
            (3, bytes(range(256)) * 10),
        ]
        assert not requests.cut_off
    requests = file_child.Requests()
    requests.feed(stream[:-1])
    requests.take()
    assert requests.cut_off, "the last request is not whole"


def _replies(replies: bytes) -> dict[int, tuple[int, bytes, int, str]]:
    """request id → (errno, digest, offset, segment or message)."""
    outcomes = {}
    while replies:
        request_id, code, digest, offset, size = file_child.REPLY.unpack_from(replies)
        end = file_child.REPLY.size + size
        outcomes[request_id] = (code, digest, offset, replies[file_child.REPLY.size : end].decode())
        replies = replies[end:]
    return outcomes


def _batch(*payloads: bytes, first_id: int = 1) -> list[file_child.Request]:
    return [file_child.Request(first_id + n, data) for n, data in enumerate(payloads)]


def test_a_batch_lands_back_to_back_in_one_segment(tmp_path: Path) -> None:
    segments = file_child.Segments(str(tmp_path))
    outcomes = _replies(segments.write_all(_batch(b"one", b"", b"three")))
    names = {outcome[3] for outcome in outcomes.values()}
    assert len(names) == 1
    assert [(code, offset) for code, _, offset, _ in outcomes.values()] == [(0, 0), (0, 3), (0, 3)]
    assert outcomes[3][1] == hashlib.sha256(b"three").digest()
    later = _replies(segments.write_all(_batch(b"four", first_id=4)))
    assert later[4][2:] == (8, names.pop()), "the next batch goes on where the last ended"


def test_a_segment_written_by_someone_else_or_removed_is_followed(tmp_path: Path) -> None:
    segments = file_child.Segments(str(tmp_path))
    (_, _, _, name) = _replies(segments.write_all(_batch(b"first")))[1]
    with (tmp_path / name).open("ab") as segment:
        segment.write(b"not ours")
    assert _replies(segments.write_all(_batch(b"x", first_id=2)))[2][2:] == (13, name)
    (tmp_path / name).unlink()
    code, _, offset, other = _replies(segments.write_all(_batch(b"y", first_id=3)))[3]
    assert (code, offset) == (0, 0) and other != name
    assert (tmp_path / other).read_bytes() == b"y"


def test_a_full_or_old_segment_gives_way_to_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(file_child, "SEGMENT_BYTES", 10)
    segments = file_child.Segments(str(tmp_path))
    full = _replies(segments.write_all(_batch(b"0123456789")))[1][3]
    after_full = _replies(segments.write_all(_batch(b"next", first_id=2)))[2][3]
    assert after_full != full
    monkeypatch.setattr(file_child, "SEGMENT_SECONDS", 0.0)
    after_old = _replies(segments.write_all(_batch(b"later", first_id=3)))[3][3]
    assert after_old not in (full, after_full)
    assert sorted(os.listdir(tmp_path)) == sorted([full, after_full, after_old])


BATCHES_UNDER_A_LIMIT = """
import sys
from engine.store import file_child
segments = file_child.Segments(sys.argv[1])
first = [file_child.Request(n, data) for n, data in ((1, b"a" * 40), (2, b"b" * 40), (3, b"c"))]
sys.stdout.buffer.write(segments.write_all(first))
sys.stdout.buffer.write(segments.write_all([file_child.Request(4, b"d")]))
"""


def _at_most_64_bytes_a_file() -> None:
    """In the child only: a real EFBIG from the kernel past 64 bytes, not a signal."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_a_write_the_disk_refuses_fails_the_rest_of_its_batch_and_the_next_starts_anew(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", BATCHES_UNDER_A_LIMIT, str(tmp_path)],
        capture_output=True,
        preexec_fn=_at_most_64_bytes_a_file,
        cwd=Path(__file__).parent.parent,
        check=True,
    )
    outcomes = _replies(done.stdout)
    assert outcomes[1][0] == 0 and outcomes[1][2] == 0
    assert outcomes[2][0] == errno.EFBIG and outcomes[2][3] == "File too large"
    assert outcomes[3][0] == errno.EFBIG, "after a failed write the segment's end is unknown"
    kept = outcomes[1][3]
    assert (tmp_path / kept).read_bytes()[:40] == b"a" * 40
    fresh = outcomes[4]
    assert fresh[0] == 0 and fresh[2] == 0 and fresh[3] != kept


def test_a_segment_name_tells_when_it_was_started() -> None:
    started = time.time()
    name = file_child.segment_name(started, 4321, 7)
    assert name.endswith("-4321-0007.seg")
    assert file_child.segment_started(name) == float(int(started))
    assert file_child.segment_started("notes.txt") is None
    assert file_child.segment_started("garbage-1-1.seg") is None
