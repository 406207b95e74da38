"""The deadline scheduler: one timer for every sitting, rescheduled and cleared correctly."""

from __future__ import annotations

import asyncio
import time

from engine.server.scheduler import DeadlineScheduler


async def test_times_fire_in_order_and_only_the_latest_schedule_counts() -> None:
    fired: list[tuple[str, str]] = []
    scheduler = DeadlineScheduler(lambda sitting, tag: fired.append((sitting, tag)))
    now = time.time()
    scheduler.set("a", [(now + 0.10, "deadline"), (now + 0.02, "warning:60")])
    scheduler.set("b", [(now + 0.05, "deadline")])
    scheduler.set("c", [(now + 0.04, "deadline")])
    scheduler.set("a", [(now + 0.15, "deadline")])  # extra time: the old times no longer count
    scheduler.clear("c")  # closed early
    await asyncio.sleep(0.3)
    assert fired == [("b", "deadline"), ("a", "deadline")]
    scheduler.stop()


async def test_an_early_wake_waits_again_for_the_wall_clock() -> None:
    fired: list[str] = []
    offset = [0.0]
    scheduler = DeadlineScheduler(
        lambda sitting, tag: fired.append(sitting), now=lambda: time.time() + offset[0]
    )
    scheduler.set("a", [(time.time() + 0.05, "deadline")])
    offset[0] = -0.2  # the wall clock stepped back after arming
    await asyncio.sleep(0.1)
    assert fired == [], "not before the deadline by the wall clock"
    offset[0] = 0.0
    await asyncio.sleep(0.3)
    assert fired == ["a"]
    scheduler.stop()


async def test_a_past_time_fires_at_once() -> None:
    fired: list[str] = []
    scheduler = DeadlineScheduler(lambda sitting, tag: fired.append(sitting))
    scheduler.set("late", [(time.time() - 100, "deadline")])
    await asyncio.sleep(0.01)
    assert fired == ["late"]
    scheduler.stop()
