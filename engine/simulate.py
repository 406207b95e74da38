"""Simulated candidates taking a whole exam against a running server.

Each simulated candidate signs in with an access code, takes every part of the exam (language
chosen at random where there is a choice), answers every item, and submits. A dropped connection is
resumed; an answer counts as lost when the server acknowledged it but the closed sitting does not
hold it.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import json
import random
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import wire
from engine.client import (
    CandidateClient,
    ClientError,
    MediaSocket,
    ProctorClient,
    sign_in,
    staff_sign_in_sync,
)


@dataclass
class Summary:
    exam: str
    candidates: int = 0
    sittings: int = 0
    completed: int = 0
    answers_sent: int = 0
    answers_acked: int = 0
    answers_lost: int = 0
    reconnects: int = 0
    errors: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    proctor_actions: int = 0
    fixation_chunks_sent: int = 0
    fixation_chunks_acked: int = 0
    seconds: float = 0.0
    ack_latency_ms_p50: float | None = None
    ack_latency_ms_p99: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


@dataclass
class _Tally:
    errors: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    sittings: int = 0
    completed: int = 0
    sent: int = 0
    acked: int = 0
    lost: int = 0
    reconnects: int = 0
    proctor_actions: int = 0
    chunks_sent: int = 0
    chunks_acked: int = 0


def fetch_roster(base_url: str, exam_id: str, limit: int) -> list[tuple[str, str]]:
    """Unused access codes from a demo server (GET /api/v1/demo/roster)."""
    url = f"{base_url.rstrip('/')}/api/v1/demo/roster?exam={exam_id}&limit={limit}"
    with urllib.request.urlopen(url, timeout=60) as response:
        body = json.load(response)
    return [(row["candidate"], row["code"]) for row in body["candidates"]]


def fetch_demo_staff(base_url: str, exam_id: str) -> tuple[str, str] | None:
    """An admin's login and password from a demo server (GET /api/v1/demo/staff)."""
    url = f"{base_url.rstrip('/')}/api/v1/demo/staff?exam={exam_id}"
    with urllib.request.urlopen(url, timeout=60) as response:
        staff = json.load(response)["staff"]
    admins = [row for row in staff if row["role"] == "admin"]
    return (admins[0]["login"], admins[0]["password"]) if admins else None


def read_roster(path: Path) -> list[tuple[str, str]]:
    """A CSV with columns candidate and code, as the server writes under access-codes/."""
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["candidate"], row["code"]) for row in csv.DictReader(handle)]


async def simulate(
    base_url: str,
    exam_id: str,
    candidates: int,
    *,
    roster: list[tuple[str, str]] | None = None,
    think_s: float = 0.0,
    concurrency: int = 1000,
    seed: int = 0,
    proctor: tuple[str, str] | None = None,
    chunk_every: int = 20,
) -> Summary:
    """Run the candidates; with `proctor` (login, password) also play the proctor who checks
    identity and admits. On a demo server an admin's credentials are fetched when needed."""
    if roster is None:
        roster = await asyncio.to_thread(fetch_roster, base_url, exam_id, candidates)
    roster = roster[:candidates]
    if len(roster) < candidates:
        raise ClientError(
            "roster_short",
            f"only {len(roster)} unused access codes for {exam_id}, {candidates} asked",
        )
    tally = _Tally()
    gate = asyncio.Semaphore(concurrency)
    started = time.perf_counter()
    exam = await asyncio.to_thread(_exam_info, base_url, exam_id)
    playing: asyncio.Task[None] | None = None
    desk: ProctorClient | None = None
    if exam.get("admission") == "proctor":
        if proctor is None:
            proctor = await asyncio.to_thread(fetch_demo_staff, base_url, exam_id)
        if proctor is None:
            raise ClientError(
                "no_proctor", f"{exam_id} needs a proctor: give --proctor LOGIN:PASSWORD"
            )
        signed = await asyncio.to_thread(staff_sign_in_sync, base_url, *proctor, exam_id)
        desk = ProctorClient(base_url, signed["token"])
        await desk.connect()
        playing = asyncio.create_task(_play_proctor(desk, tally))

    async def one(index: int, code: str) -> None:
        async with gate:
            rng = random.Random(seed * 1_000_003 + index)
            await _candidate(base_url, code, rng, think_s, tally, chunk_every)

    try:
        await asyncio.gather(*(one(i, code) for i, (_, code) in enumerate(roster)))
    finally:
        if playing is not None and desk is not None:
            playing.cancel()
            await asyncio.gather(playing, return_exceptions=True)
            await desk.close()
    latencies = sorted(tally.latencies)
    return Summary(
        exam=exam_id,
        candidates=len(roster),
        sittings=tally.sittings,
        completed=tally.completed,
        answers_sent=tally.sent,
        answers_acked=tally.acked,
        answers_lost=tally.lost,
        reconnects=tally.reconnects,
        proctor_actions=tally.proctor_actions,
        fixation_chunks_sent=tally.chunks_sent,
        fixation_chunks_acked=tally.chunks_acked,
        errors=sum(tally.errors.values()),
        error_codes=dict(tally.errors),
        outcomes=dict(tally.outcomes),
        seconds=round(time.perf_counter() - started, 3),
        ack_latency_ms_p50=_percentile(latencies, 50),
        ack_latency_ms_p99=_percentile(latencies, 99),
    )


def _percentile(sorted_values: list[float], percent: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, round(percent / 100 * (len(sorted_values) - 1)))
    return round(sorted_values[index] * 1000, 3)


def _exam_info(base_url: str, exam_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base_url.rstrip('/')}/api/v1/exams/{exam_id}", timeout=60) as r:
        return dict(json.load(r))


async def _play_proctor(desk: ProctorClient, tally: _Tally) -> None:
    """Check the identity of every candidate who waits, then admit them."""
    handled: set[str] = set()
    while True:
        waiting = [
            tile
            for tile in desk.tiles.values()
            if tile.state == "scheduled" and tile.connected and tile.sitting not in handled
        ]
        for tile in waiting:
            handled.add(tile.sitting)
            for kind, fields in (("confirm-identity", {"document": tile.document}), ("admit", {})):
                result = await desk.act(tile.sitting, kind, **fields)
                tally.proctor_actions += 1
                if not result.ok:
                    tally.errors[f"proctor:{result.code}"] += 1
                    break
        with contextlib.suppress(TimeoutError):
            await desk.changed(timeout_s=5)


FAKE_WEBM_HEADER = b"\x1a\x45\xdf\xa3"
FAKE_JPEG_HEADER = b"\xff\xd8\xff\xe0"


async def _send_chunk(media: MediaSocket, rng: random.Random, seq: int, tally: _Tally) -> None:
    """A stand-in for a MediaRecorder chunk: the stream header on the first, random bytes after,
    on the media socket as the page sends it."""
    body = (FAKE_WEBM_HEADER if seq == 1 else b"") + rng.randbytes(16 * 1024)
    tally.chunks_sent += 1
    await media.send_chunk(seq, body, "video/webm")
    tally.chunks_acked += 1


async def _candidate(
    base_url: str,
    code: str,
    rng: random.Random,
    think_s: float,
    tally: _Tally,
    chunk_every: int,
) -> None:
    try:
        signed = await sign_in(base_url, code)
    except (ClientError, OSError) as error:
        tally.errors[getattr(error, "code", type(error).__name__)] += 1
        return
    for part in signed["exam"]["parts"]:
        tally.sittings += 1
        client = CandidateClient(base_url, signed["token"], part["id"])
        try:
            await _take_part(
                client,
                signed.get("media_socket"),
                signed["exam"]["languages"],
                rng,
                think_s,
                tally,
                chunk_every,
            )
        except ClientError as error:
            tally.errors[error.code] += 1
        except (OSError, TimeoutError) as error:
            tally.errors[type(error).__name__] += 1
        finally:
            await client.close()


async def _take_part(
    client: CandidateClient,
    media_url: str | None,
    languages: list[str],
    rng: random.Random,
    think_s: float,
    tally: _Tally,
    chunk_every: int,
) -> None:
    welcome = await _connect(client, tally)
    media = MediaSocket(client.base_url, client.token, client.part, url=media_url)
    try:
        await _sit(client, welcome, media, languages, rng, think_s, tally, chunk_every)
    finally:
        await media.close()


async def _sit(
    client: CandidateClient,
    welcome: wire.Welcome,
    media: MediaSocket,
    languages: list[str],
    rng: random.Random,
    think_s: float,
    tally: _Tally,
    chunk_every: int,
) -> None:
    chunk_seq = 1
    if chunk_every:
        await _send_chunk(media, rng, chunk_seq, tally)
        await media.send_snapshot(FAKE_JPEG_HEADER + rng.randbytes(2048), "image/jpeg")
    if welcome.state == "scheduled":
        await client.wait_admitted(timeout_s=600)
        welcome = dataclasses.replace(welcome, state="checked-in")
    if welcome.state == "checked-in":
        form = await client.start(rng.choice(languages))
    else:
        form = client.view.form or await client.next_message(wire.FormOut)  # type: ignore[assignment]
    assert isinstance(form, wire.FormOut)
    answered = {answer.item for answer in welcome.answers}
    for item in form.items:
        if item.id in answered:
            continue
        if think_s:
            await asyncio.sleep(rng.expovariate(1 / think_s))
        if chunk_every and (len(client.acked) + 1) % chunk_every == 0:
            chunk_seq += 1
            await _send_chunk(media, rng, chunk_seq, tally)
        choice = rng.randrange(len(item.options))
        sent_at = time.perf_counter()
        tally.sent += 1
        try:
            await client.answer(item.id, choice)
            tally.latencies.append(time.perf_counter() - sent_at)
        except ClientError as error:
            if error.code != "disconnected":
                raise
            tally.reconnects += 1
            await _connect(client, tally, resume=True)  # resends what was not acknowledged
            await client.wait_acked()
    closed = await client.submit()
    tally.completed += 1
    tally.acked += len(client.acked)
    tally.outcomes[str((closed.result or {}).get("outcome", closed.state))] += 1
    acked_items = {answer.item for answer in client.acked.values() if answer.choice is not None}
    tally.lost += max(0, len(acked_items) - closed.answered)


async def _connect(client: CandidateClient, tally: _Tally, *, resume: bool = False) -> wire.Welcome:
    for attempt in range(20):
        try:
            return await (client.resume() if resume else client.connect())
        except (OSError, TimeoutError) as error:
            tally.errors[f"connect:{type(error).__name__}"] += 1
            await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
    raise ClientError("unreachable", "could not connect after 20 attempts")


def summary_dict(summary: Summary) -> dict[str, Any]:
    return asdict(summary)
