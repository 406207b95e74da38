"""The serving process's collector: automatic collection off, collections on a schedule."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from engine.server import tuning


class _Cycle:
    """An object in a reference cycle with itself: only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


@contextlib.contextmanager
def _collector_restored() -> Iterator[None]:
    try:
        yield
    finally:
        gc.unfreeze()
        gc.enable()
        gc.collect()


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def _scheduled(**settings: Any) -> AsyncIterator[None]:
    """`collect_on_schedule` running with these settings for the block's length."""
    schedule = asyncio.create_task(tuning.collect_on_schedule(**settings))
    try:
        yield
    finally:
        schedule.cancel()
        await asyncio.gather(schedule, return_exceptions=True)


def _frozen_garbage(count: int = 100) -> list[weakref.ref[_Cycle]]:
    """Cycles frozen while alive, then dropped: only a thaw lets a collection free them."""
    gc.collect()
    gc.disable()
    held = [_Cycle() for _ in range(count)]
    cycles = [weakref.ref(cycle) for cycle in held]
    gc.freeze()  # frozen while alive
    del held  # now garbage among frozen objects: no collection sees it before a thaw
    gc.collect()
    assert all(ref() is not None for ref in cycles)
    return cycles


async def test_many_new_objects_bring_a_collection_that_frees_cycles_and_freezes_the_rest() -> None:
    with _collector_restored():
        gc.collect()
        gc.disable()
        async with _scheduled(
            every_s=3600, after_allocations=20_000, thaw_every_s=3600, check_every_s=0.01
        ):
            kept = [[n] for n in range(30_000)]  # more than `after_allocations`, kept alive
            cycles = [weakref.ref(_Cycle()) for _ in range(1000)]  # garbage only gc frees
            assert all(ref() is not None for ref in cycles)
            await _until(lambda: gc.get_freeze_count() >= len(kept))
            assert all(ref() is None for ref in cycles)
            assert gc.get_count()[0] < 1000


async def test_the_thaw_frees_cycles_that_died_frozen() -> None:
    with _collector_restored():
        cycles = _frozen_garbage()
        async with _scheduled(
            every_s=0.05, after_allocations=10**9, thaw_every_s=0.05, check_every_s=0.01
        ):
            await asyncio.sleep(0.3)
        assert all(ref() is None for ref in cycles)


async def test_the_thaw_waits_until_no_sitting_runs() -> None:
    with _collector_restored():
        cycles = _frozen_garbage()
        running = [True]
        async with _scheduled(
            every_s=0.05,
            after_allocations=10**9,
            thaw_every_s=0.05,
            check_every_s=0.01,
            quiet=lambda: not running[0],
        ):
            await asyncio.sleep(0.3)
            assert all(ref() is not None for ref in cycles), "thawed while sittings ran"
            running[0] = False
            await _until(lambda: all(ref() is None for ref in cycles))


async def test_a_node_never_quiet_still_thaws_at_the_longest_interval() -> None:
    with _collector_restored():
        cycles = _frozen_garbage()
        async with _scheduled(
            every_s=3600,
            after_allocations=10**9,
            thaw_every_s=0.01,
            check_every_s=0.01,
            quiet=lambda: False,
            thaw_at_least_every_s=0.2,
        ):
            await _until(lambda: all(ref() is None for ref in cycles))


async def test_many_new_objects_while_sittings_run_are_frozen_without_a_walk() -> None:
    with _collector_restored():
        gc.collect()
        gc.disable()
        walks: list[str] = []

        def count_walks(phase: str, info: dict[str, int]) -> None:
            if phase == "start":
                walks.append(phase)

        gc.callbacks.append(count_walks)
        try:
            async with _scheduled(
                every_s=3600,
                after_allocations=20_000,
                thaw_every_s=3600,
                check_every_s=0.01,
                quiet=lambda: False,
            ):
                cycles = [weakref.ref(_Cycle()) for _ in range(1000)]  # garbage only gc frees
                kept = [[n] for n in range(30_000)]
                await _until(lambda: gc.get_freeze_count() >= len(kept))
                assert walks == [], "frozen, not collected"
                assert all(ref() is not None for ref in cycles), "the cycles wait for a thaw"
                assert gc.get_count()[0] < 1000
        finally:
            gc.callbacks.remove(count_walks)
