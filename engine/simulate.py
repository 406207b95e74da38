"""Simulated candidates taking a whole exam against a running server.

Each simulated candidate signs in with an access code, takes every part of the exam (language
chosen at random where there is a choice), answers every item, and submits. A dropped connection is
resumed; an answer counts as lost when the server acknowledged it but the closed sitting does not
hold it.
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine import wire
from engine.client import CandidateClient, ClientError, sign_in


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


def fetch_roster(base_url: str, exam_id: str, limit: int) -> list[tuple[str, str]]:
    """Unused access codes from a demo server (GET /api/v1/demo/roster)."""
    url = f"{base_url.rstrip('/')}/api/v1/demo/roster?exam={exam_id}&limit={limit}"
    with urllib.request.urlopen(url, timeout=60) as response:
        body = json.load(response)
    return [(row["candidate"], row["code"]) for row in body["candidates"]]


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
) -> Summary:
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

    async def one(index: int, code: str) -> None:
        async with gate:
            await _candidate(
                base_url, code, random.Random(seed * 1_000_003 + index), think_s, tally
            )

    await asyncio.gather(*(one(i, code) for i, (_, code) in enumerate(roster)))
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


async def _candidate(
    base_url: str, code: str, rng: random.Random, think_s: float, tally: _Tally
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
            await _take_part(client, signed["exam"]["languages"], rng, think_s, tally)
        except ClientError as error:
            tally.errors[error.code] += 1
        except (OSError, TimeoutError) as error:
            tally.errors[type(error).__name__] += 1
        finally:
            await client.close()


async def _take_part(
    client: CandidateClient, languages: list[str], rng: random.Random, think_s: float, tally: _Tally
) -> None:
    welcome = await _connect(client, tally)
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
