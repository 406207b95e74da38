"""The media gate: uploads at once follow the loop's lag; waiting ones keep their turn."""

from __future__ import annotations

import asyncio

import pytest

from engine.server.media_gate import HALVE_AT_MOST_EVERY_S, MediaGate


class Lag:
    """A loop lag and a clock the test sets."""

    def __init__(self) -> None:
        self.lag_s = 0.0
        self.now = 0.0

    def gate(self, most: int = 8, least: int = 2) -> MediaGate:
        return MediaGate(lambda: self.lag_s, most=most, least=least, clock=lambda: self.now)


async def _hold(gate: MediaGate, entered: list[int], n: int, leave: asyncio.Event) -> None:
    async with gate.slot():
        entered.append(n)
        await leave.wait()


async def test_a_late_loop_halves_the_uploads_at_once_and_a_prompt_one_grows_them() -> None:
    lag = Lag()
    gate = lag.gate(most=8, least=2)
    lag.lag_s = 0.2
    for _ in range(3):
        async with gate.slot():
            pass
        lag.now += HALVE_AT_MOST_EVERY_S
    assert gate.limit == 2, "8 → 4 → 2, and never below the least"
    assert gate.halved == 2
    lag.lag_s = 0.0
    for _ in range(20):
        async with gate.slot():
            pass
    assert 2 < gate.limit < 8, "about one more per round of uploads"
    grown = gate.limit
    lag.lag_s = 0.2
    async with gate.slot():
        pass
    async with gate.slot():
        pass
    assert gate.limit == grown / 2, "halved once however many finish within half a second"


async def test_beyond_the_limit_uploads_wait_in_order_and_a_cancelled_one_gives_way() -> None:
    lag = Lag()
    gate = lag.gate(most=2, least=2)
    entered: list[int] = []
    leave = asyncio.Event()
    tasks = [asyncio.create_task(_hold(gate, entered, n, leave)) for n in range(5)]
    await asyncio.sleep(0)
    assert entered == [0, 1] and gate.stats()["waiting"] == 3
    tasks[2].cancel()
    await asyncio.sleep(0)
    assert gate.stats()["waiting"] == 2
    leave.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert entered == [0, 1, 3, 4]
    assert gate.stats() == {"limit": 2.0, "in_use": 0, "waiting": 0, "halved": 0}


async def test_a_slot_handed_to_a_waiter_cancelled_meanwhile_passes_on() -> None:
    gate = Lag().gate(most=2, least=2)
    entered: list[int] = []
    leave = asyncio.Event()
    first = [asyncio.create_task(_hold(gate, entered, n, leave)) for n in range(2)]
    await asyncio.sleep(0)
    waiter = asyncio.create_task(_hold(gate, entered, 2, asyncio.Event()))
    last = asyncio.create_task(_hold(gate, entered, 3, leave))
    await asyncio.sleep(0)
    leave.set()
    await asyncio.sleep(0)  # the first two leave: slots go to the waiter and the last
    waiter.cancel()  # before it ran again
    await asyncio.gather(*first, last)
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert gate.in_use == 0 and entered[-1] == 3
