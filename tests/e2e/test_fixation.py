"""A/V fixation over HTTP: every chunk on disk and in the log, every wrong one refused and noted."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from engine.client import CandidateClient, ClientError, upload_media
from engine.fixation import MAX_CHUNK_BYTES, MediaRecord, sha256_hex, stored_bytes
from tests.e2e.conftest import Running
from tests.e2e.harness import read_staff

WEBM = b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8
JPEG = b"\xff\xd8\xff\xe0" + bytes(100)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


async def post(
    session: aiohttp.ClientSession,
    client: CandidateClient,
    data: bytes,
    *,
    seq: int | None = 1,
    media_type: str = "video/webm",
) -> dict[str, object]:
    return await upload_media(
        session, client.base_url, client.token, client.part, data, media_type, seq=seq
    )


async def refused_code(coroutine: object) -> str:
    with pytest.raises(ClientError) as refused:
        await coroutine  # type: ignore[misc]
    return refused.value.code


async def started(running: Running) -> tuple[CandidateClient, str]:
    """A candidate whose sitting runs, and the sitting's id."""
    client, _ = await running.candidate()
    await client.start("kk")
    return client, client.view.welcome.sitting  # type: ignore[union-attr]


async def started_with_a_chunk(
    running: Running, session: aiohttp.ClientSession
) -> tuple[CandidateClient, MediaRecord]:
    """A running sitting whose chunk 1 is stored, and that chunk's record."""
    client, sitting = await started(running)
    await post(session, client, WEBM, seq=1)
    (first,) = await running.hall.media_records(sitting)
    return client, first


def on_disk(running: Running, record: MediaRecord) -> bytes:
    return stored_bytes(running.config.data_dir, record)


def fixation(running: Running, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "fixation",
            *arguments,
            "--data",
            str(running.config.data_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def verify(running: Running) -> subprocess.CompletedProcess[str]:
    return fixation(running, "verify")


async def test_chunks_are_stored_hashed_and_verified(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, sitting = await started(running)
    first = await post(session, client, WEBM, seq=1)
    second = await post(session, client, b"next bytes", seq=2)
    assert first["size"] == len(WEBM) and len(str(first["sha256"])) == 64
    assert second["seq"] == 2
    assert await post(session, client, b"next bytes", seq=2) == second, (
        "the same chunk again is acknowledged with its first record, not stored twice"
    )
    still = await post(session, client, JPEG, seq=None, media_type="image/jpeg")
    assert still["seq"] == 1
    records = await running.hall.media_records(sitting)
    assert [(r.kind.value, r.seq) for r in records] == [("chunk", 1), ("chunk", 2), ("snapshot", 1)]
    assert {record.path for record in records} == {records[0].path}, "one segment holds all"
    assert [record.offset for record in records] == [0, len(WEBM), len(WEBM) + 20]
    result = verify(running)
    assert result.returncode == 0, result.stderr
    assert "intact: 3 uploads match the log" in result.stdout
    assert "10 bytes in 1 segment(s) belong to no record" in result.stdout, "chunk 2 sent again"


async def test_a_tampered_chunk_is_named_by_fixation_verify(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, sitting = await started(running)
    await post(session, client, WEBM, seq=1)
    await post(session, client, b"second chunk", seq=2)
    first, second = await running.hall.media_records(sitting)
    segment = running.config.data_dir / first.path
    with segment.open("r+b") as handle:
        handle.seek(second.offset + len(b"second chun"))  # type: ignore[operator]
        handle.write(b"K")
    result = verify(running)
    assert result.returncode == 1
    assert f"chunk 2 ({second.path}): SHA-256 differs from the log" in result.stderr
    assert "chunk 1" not in result.stderr
    segment.unlink()
    result = verify(running)
    assert f"chunk 1 ({first.path}): the file is missing" in result.stderr
    assert f"chunk 2 ({second.path}): the file is missing" in result.stderr
    (running.config.data_dir / "media" / "left-here.webm").write_bytes(WEBM)
    assert "media/left-here.webm: a file no record accounts for" in verify(running).stderr


async def test_every_wrong_chunk_is_refused_or_noted(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, sitting = await started(running)
    assert await refused_code(post(session, client, b"not webm", seq=1)) == "bad_media"
    assert await refused_code(post(session, client, WEBM, seq=1, media_type="text/plain")) == (
        "bad_media"
    )
    assert await refused_code(post(session, client, WEBM, seq=0)) == "bad_seq"
    big = b"\x1a\x45\xdf\xa3" + bytes(MAX_CHUNK_BYTES)
    assert await refused_code(post(session, client, big, seq=1)) == "chunk_too_large"
    await post(session, client, WEBM, seq=1)
    assert await refused_code(post(session, client, WEBM + b"!", seq=1)) == "duplicate_chunk"
    await post(session, client, b"five", seq=5)
    await post(session, client, b"three", seq=3)
    assert (
        await refused_code(
            post(session, client, b"not an image", seq=None, media_type="image/jpeg")
        )
        == "bad_media"
    )
    events = await running.hall.store.events_of(sitting)
    noted = [e["data"]["kind"] for e in events if e["kind"] == "irregularity"]
    assert noted == [
        "media-bad",
        "media-bad",
        "media-oversized",
        "media-duplicate",
        "media-gap",
        "media-out-of-order",
        "media-bad",
    ]
    result = verify(running)
    assert result.returncode == 0, result.stderr
    assert f"{len(WEBM) + 1} bytes in 1 segment(s) belong to no record" in result.stdout, (
        "the refused duplicate's bytes were written before it was refused"
    )


async def test_no_chunk_is_taken_for_a_closed_sitting_or_a_bad_token(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, _ = await started(running)
    await client.submit()
    assert await refused_code(post(session, client, WEBM, seq=1)) == "sitting_closed"
    client.token = client.token[:-4] + "AAAA"
    assert await refused_code(post(session, client, WEBM, seq=1)) == "bad_token"


async def test_retention_deletes_old_media_but_keeps_the_record(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, sitting = await started(running)
    await post(session, client, WEBM, seq=1)
    records = running.hall.records
    assert records is not None
    now = running.hall.now()
    assert await records.purge_closed_before(now, now) == 0, "an open sitting keeps its media"
    await client.submit()
    assert await records.purge_closed_before(now - 3600, now) == 0, "closed too recently"
    assert await records.purge_closed_before(now + 1, now + 1) == 1
    (record,) = await records.media_of(sitting)
    assert record.purged and on_disk(running, record) == bytes(len(WEBM)), "overwritten"
    events = [e["kind"] for e in await running.hall.store.events_of(sitting)]
    assert "media-purged" in events
    result = verify(running)
    assert result.returncode == 0 and "1 purged by retention" in result.stdout
    segment = running.config.data_dir / record.path
    assert segment.exists(), "a segment this young may still be appended to: it stays"
    a_day_later = now + 86_400
    assert await records.purge_closed_before(a_day_later, a_day_later) == 0
    assert not segment.exists(), "nothing in it is kept and no append can reach it: deleted"
    assert verify(running).returncode == 0


async def test_a_large_chunk_is_stored_whole(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, sitting = await started(running)
    data = b"\x1a\x45\xdf\xa3" + bytes(range(251)) * 6000
    reply = await post(session, client, data, seq=1)
    assert reply["size"] == len(data) and reply["sha256"] == sha256_hex(data)
    (record,) = await running.hall.media_records(sitting)
    assert on_disk(running, record) == data


async def test_bytes_a_crash_left_before_their_commit_belong_to_no_record(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, first = await started_with_a_chunk(running, session)
    with (running.config.data_dir / first.path).open("ab") as segment:
        segment.write(b"written, never recorded")  # the node died between sync and commit
    reply = await post(session, client, b"the chunk sent again", seq=2)
    assert reply["sha256"] == sha256_hex(b"the chunk sent again")
    _, second = await running.hall.media_records(first.sitting_id)
    assert on_disk(running, second) == b"the chunk sent again"
    result = verify(running)
    assert result.returncode == 0, result.stderr
    assert "23 bytes in 1 segment(s) belong to no record" in result.stdout


async def test_one_chunk_sent_many_times_at_once_is_stored_once(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, sitting = await started(running)
    replies = await asyncio.gather(*(post(session, client, WEBM, seq=1) for _ in range(8)))
    assert {reply["sha256"] for reply in replies} == {sha256_hex(WEBM)}
    (record,) = await running.hall.media_records(sitting)
    assert on_disk(running, record) == WEBM
    events = [e["kind"] for e in await running.hall.store.events_of(sitting)]
    assert events.count("media-chunk") == 1
    async with session.get(f"{running.url}/api/v1/health") as response:
        uploads = (await response.json())["uploads"]
    assert (uploads["under_way"], uploads["answered"]) == (0, 8)
    assert 1 <= uploads["most_at_once"] <= 8
    assert uploads["recent_ms"]["samples"] == 8 and uploads["recent_ms"]["max"] > 0


async def test_a_chunk_the_disk_would_not_take_is_refused_as_not_stored_and_taken_later(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, first = await started_with_a_chunk(running, session)
    folder = (running.config.data_dir / first.path).parent  # the segments
    folder.rename(folder.with_name("moved"))
    folder.write_bytes(b"")  # a file where the folder was: nothing can be written under it
    assert await refused_code(post(session, client, b"second", seq=2)) == "not_stored"
    folder.unlink()
    folder.with_name("moved").rename(folder)
    reply = await post(session, client, b"second", seq=2)
    assert reply["seq"] == 2
    records = await running.hall.media_records(client.view.welcome.sitting)  # type: ignore[union-attr]
    assert [record.seq for record in records] == [1, 2]


async def test_two_chunks_of_one_number_at_once_keep_one_and_refuse_the_other(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, sitting = await started(running)
    versions = [WEBM, WEBM + b"other bytes"]

    async def send(data: bytes) -> tuple[bytes, str]:
        try:
            reply = await post(session, client, data, seq=1)
        except ClientError as refused:
            return data, refused.code
        return data, str(reply["sha256"])

    outcomes = await asyncio.gather(*(send(versions[n % 2]) for n in range(10)))
    (record,) = await running.hall.media_records(sitting)
    kept = next(data for data in versions if sha256_hex(data) == record.sha256)
    for data, outcome in outcomes:
        assert outcome == (record.sha256 if data == kept else "duplicate_chunk")
    assert on_disk(running, record) == kept
    assert verify(running).returncode == 0


async def test_a_sittings_recording_is_exported_one_playable_file_per_stream(
    running: Running, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    client, sitting = await started(running)
    await post(session, client, WEBM, seq=1)
    await post(session, client, b"and on", seq=2)
    reloaded = b"\x1a\x45\xdf\xa3" + b"a new recorder after a reload"
    await post(session, client, reloaded, seq=3)
    await post(session, client, JPEG, seq=None, media_type="image/jpeg")
    other, _ = await started(running)
    await post(session, other, WEBM + b"another candidate", seq=1)  # in the same segment
    out = tmp_path / "export"
    result = fixation(running, "export", "--sitting", sitting, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "recording-1.webm").read_bytes() == WEBM + b"and on"
    assert (out / "recording-2.webm").read_bytes() == reloaded
    assert (out / "snapshot-000001.jpg").read_bytes() == JPEG
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [(p["kind"], p["seq"], p["exported_to"]) for p in manifest["pieces"]] == [
        ("chunk", 1, "recording-1.webm"),
        ("chunk", 2, "recording-1.webm"),
        ("chunk", 3, "recording-2.webm"),
        ("snapshot", 1, "snapshot-000001.jpg"),
    ]
    assert manifest["pieces"][1]["offset_in_file"] == len(WEBM)
    assert manifest["problems"] == []

    _, second, *_ = await running.hall.media_records(sitting)
    with (running.config.data_dir / second.path).open("r+b") as segment:
        segment.seek(second.offset)  # type: ignore[arg-type]
        segment.write(b"AND")
    result = fixation(running, "export", "--sitting", sitting, "--out", str(tmp_path / "again"))
    assert result.returncode == 1
    assert "chunk 2: differs from the log, left out" in result.stderr
    assert (tmp_path / "again" / "recording-1.webm").read_bytes() == WEBM
    missing = fixation(running, "export", "--sitting", "no-such", "--out", str(tmp_path / "x"))
    assert missing.returncode == 2 and "no media recorded for sitting no-such" in missing.stderr


async def test_a_proctor_gets_the_latest_still_out_of_its_segment(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, _ = await running.candidate("t-proctored")
    await client.connect()  # waits for the proctor's check: stills may come before the start
    sitting = client.view.welcome.sitting  # type: ignore[union-attr]
    url = f"{running.url}/api/v1/sittings/{sitting}/snapshot"
    passwords = read_staff(running.config.data_dir, "t-proctored")
    async with session.post(
        f"{running.url}/api/v1/staff/signin",
        json={"login": "admin", "password": passwords["admin"]},
    ) as reply:
        headers = {"Authorization": f"Bearer {(await reply.json())['token']}"}
    async with session.get(url, headers=headers) as reply:
        assert (reply.status, (await reply.json())["error"]) == (404, "no_snapshot")

    later = JPEG + b"the second still"
    await post(session, client, JPEG, seq=None, media_type="image/jpeg")
    await post(session, client, WEBM + b"a chunk between them", seq=1)
    await post(session, client, later, seq=None, media_type="image/jpeg")
    async with session.get(url, headers=headers) as reply:
        assert reply.status == 200
        assert reply.content_type == "image/jpeg"
        assert reply.headers["Cache-Control"] == "no-store"
        assert await reply.read() == later, "the latest still's own bytes, not its neighbours'"
