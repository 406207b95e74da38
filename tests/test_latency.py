"""The loop-lag sleeper, the uploads count and the percentile summary the health endpoint serves."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from engine.latency import CollectorPauses, LoopLag, Uploads, percentiles_ms
from engine.server.upload_gate import UploadGate


def test_percentiles_are_in_milliseconds_over_what_was_given() -> None:
    summary = percentiles_ms([0.001 * n for n in range(1, 101)])
    assert summary == {"p50": 50.5, "p99": 99.01, "max": 100.0, "samples": 100}
    assert percentiles_ms([]) == {"p50": 0.0, "p99": 0.0, "max": 0.0, "samples": 0}


async def test_a_blocked_loop_shows_as_lag() -> None:
    lag = LoopLag(period_s=0.01, window_s=10)
    sleeper = asyncio.create_task(lag.run())
    await asyncio.sleep(0.05)
    time.sleep(0.2)  # the loop is held: the sleeper wakes at least this late
    await asyncio.sleep(0.05)
    sleeper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeper
    summary = lag.summary_ms()
    assert summary["max"] >= 150
    assert summary["p50"] < summary["max"]


def test_collector_pauses_are_counted_per_generation_and_long_ones_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pauses = CollectorPauses(warn_s=0.0)  # every pause counts as long here
    pauses.install()
    try:
        gc.collect(2)
        gc.collect(0)
    finally:
        pauses.uninstall()
    gc.collect(2)  # after uninstalling: not counted
    summary = pauses.summary_ms()
    assert summary["gen2"]["collections"] == 1 and summary["gen2"]["samples"] == 1
    assert summary["gen0"]["collections"] >= 1
    assert summary["gen2"]["max"] > 0
    assert any("generation 2 took" in record.getMessage() for record in caplog.records)


def test_uploads_count_what_is_under_way_and_time_what_was_answered() -> None:
    uploads = Uploads(kept=2)
    with uploads.one(), uploads.one():
        assert uploads.summary()["under_way"] == 2
        time.sleep(0.01)
    with pytest.raises(OSError), uploads.one():
        raise OSError("a refused upload still ends")
    summary = uploads.summary()
    assert (summary["under_way"], summary["most_at_once"], summary["answered"]) == (0, 2, 3)
    recent = summary["recent_ms"]
    assert isinstance(recent, dict) and recent["samples"] == 2, "only the latest are kept"


def test_the_loop_woke_late_within_a_window_only_when_it_was_late_enough() -> None:
    lag = LoopLag()
    now = time.perf_counter()
    assert not lag.woke_late_within(0.1, 2.0), "nothing recorded yet"
    lag.add(0.005, now - 1.0)  # too small to be noted
    lag.add(0.15, now - 3.0)  # late enough, but outside the window
    lag.add(0.05, now - 0.5)
    assert not lag.woke_late_within(0.1, 2.0)
    assert lag.woke_late_within(0.05, 2.0)
    lag.add(0.12, now - 0.1)
    assert lag.woke_late_within(0.1, 2.0)
    assert not lag.woke_late_within(0.1, 0.05)


def test_the_gate_turns_uploads_away_while_many_are_under_way_or_the_loop_is_late() -> None:
    gate = UploadGate(most_at_once=2, retry_after_s=(3, 4))
    uploads, lag = Uploads(), LoopLag()
    assert gate.why_wait(uploads, lag) is None
    with uploads.one(), uploads.one():
        assert gate.why_wait(uploads, lag) == "2 uploads are under way"
    assert gate.why_wait(uploads, lag) is None
    lag.add(0.2, time.perf_counter())
    assert gate.why_wait(uploads, lag) == "the server is behind with answers"
    assert gate.turned_away == {"many_under_way": 1, "late_loop": 1}
    assert {gate.retry_after(uploads) for _ in range(50)} == {3, 4}
    gate.late_s = None
    assert gate.why_wait(uploads, lag) is None, "the loop's lag is not asked"


async def test_held_uploads_take_their_turns_in_order_once_the_node_has_room() -> None:
    gate = UploadGate(most_at_once=1, recheck_s=0.01)
    uploads, lag = Uploads(), LoopLag()
    order: list[int] = []

    async def upload(number: int) -> None:
        await gate.take_turn(uploads, lag)
        with uploads.one():
            order.append(number)
            await asyncio.sleep(0.02)

    with uploads.one():  # the node is full while three arrive
        arriving = [asyncio.create_task(upload(n)) for n in (1, 2, 3)]
        await asyncio.sleep(0.05)
        assert (gate.holding, order) == (3, [])
    await asyncio.gather(*arriving)
    assert order == [1, 2, 3] and gate.held == 3
    assert uploads.most_at_once == 1, "never more under way than the gate allows"

    lag.add(0.2, time.perf_counter())  # the loop woke late: a new upload waits for calm
    gate.calm_s = 0.1
    late = asyncio.create_task(upload(4))
    await asyncio.sleep(0.03)
    assert not late.done()
    await asyncio.wait_for(late, timeout=2)
    assert order[-1] == 4


async def test_held_uploads_go_paced_and_a_late_loop_halves_the_pace() -> None:
    gate = UploadGate(most_at_once=1000, recheck_s=0.02, release_floor_per_s=20.0, calm_s=0.05)
    uploads, lag = Uploads(), LoopLag()
    gate._marks.append((time.monotonic() - 2.0, 0, 0))  # it answered 200 a second…
    for _ in range(400):
        with uploads.one():
            pass
    let_go: list[tuple[int, float]] = []

    async def upload(number: int) -> None:
        await gate.take_turn(uploads, lag)
        let_go.append((number, time.monotonic()))

    lag.add(0.2, time.perf_counter())  # the loop woke late: these 60 are held
    arriving = [asyncio.create_task(upload(n)) for n in range(60)]
    await asyncio.sleep(0.005)
    assert gate.holding == 60 and 150.0 < gate.release_rate_per_s <= 200.0  # …so they go at that
    while len(let_go) < 20:
        await asyncio.sleep(0.005)
    before = gate.release_rate_per_s
    lag.add(0.2, time.perf_counter())  # late again
    await asyncio.sleep(0.05)
    assert gate.release_floor_per_s <= gate.release_rate_per_s <= 0.6 * before, "the pace halves"
    await asyncio.gather(*arriving)
    assert [number for number, _ in let_go] == list(range(60)), "in the order they came"
    # Paced, not let go at once: 60 at about 200 a second (less after the halving) take time.
    assert let_go[-1][1] - let_go[0][1] >= 0.15
    assert gate.release_rate_per_s == 0.0, "nothing held, no pace"


def test_while_many_are_turned_away_and_few_taken_the_waits_spread_further() -> None:
    gate = UploadGate(retry_after_s=(5, 15), longest_wait_s=60)
    uploads = Uploads()
    for _ in range(20):  # the node took 20 uploads…
        with uploads.one():
            pass
    gate.retry_after(uploads)  # the window starts here
    gate.turned_away["late_loop"] += 300  # …then turned 300 away while taking one more
    with uploads.one():
        pass
    waits = [gate.retry_after(uploads) for _ in range(400)]
    assert max(waits) > 15 and max(waits) <= 60 and min(waits) >= 5, "spread up to 300 s, capped"
    calm = UploadGate(retry_after_s=(5, 15))
    calm.retry_after(uploads)
    for _ in range(2000):  # the node took many…
        with uploads.one():
            pass
    calm.turned_away["many_under_way"] += 30  # …and turned a few away
    assert max(calm.retry_after(uploads) for _ in range(400)) == 15, "the usual range"
