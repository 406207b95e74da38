"""Process-wide settings of a serving node: which event loop, how threads share the GIL, and
when the garbage collector runs.

They live here, applied by `examhall serve`, and not in `create_app`, because they change the
whole process: tests build many apps in one interpreter and must not inherit them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from engine.server import keys

log = logging.getLogger("examhall.tuning")

LOOPS = ("auto", "uvloop", "asyncio")

SWITCH_INTERVAL_S = 0.001
"""How long the loop thread may keep the GIL while the store's writer waits for it (Python's
default is 5 ms). The writer gives the GIL up around every SQLite statement and waits up to
this long to get it back, several times per group commit: at 10,000 sittings the recent
commits' p99 was 83 and 56 ms at 5 ms, 42 and 44 ms at 1 ms (docs/performance.md)."""

COLLECT_EVERY_S = 300.0
"""How often `tend_collector` collects while serving (automatic collection is off).

Every collection walks each socket's in-flight objects (a pending read is a dozen of them),
which are never old enough to freeze: at 10,000 sittings 0.2–0.3 s whether it runs every 10 s
or every minute, so it runs seldom. Steady serving makes almost no cyclic garbage (none found
in a minute of exam day), so memory does not grow meanwhile."""
COLLECT_AFTER_ALLOCATIONS = 200_000
"""…or sooner, once this many more objects were made than freed since the last collection,
if the node is quiet (`Hall.is_quiet`). While candidates sign in, are connected or run, the new
objects are frozen instead (no walk, no pause): in-window collections at exam day 10,000
found no garbage ("0 collected" in the engine's log) and stopped the loop 0.11–0.47 s each,
and a start storm, before anyone ran, had two of about 0.2 s."""
THAW_EVERY_S = 3600.0
"""How often everything frozen is walked again, so cycles that died frozen are freed: at
most this often, and only while the node is quiet. At 10,000 running sittings that walk took
0.79 s over 910,000 frozen objects, and the loop woke 1.0 s late (docs/performance.md):
every answer then in flight would wait that long."""
THAW_AT_LEAST_EVERY_S = 86_400.0
"""…but at least this often, quiet or not: a node never quiet still frees what died
frozen."""


def new_event_loop(choice: str = "auto") -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (its socket reads and writes cost less), else asyncio's."""
    if choice not in LOOPS:
        raise ValueError(f"event loop is one of {', '.join(LOOPS)}, not {choice!r}")
    wants_uvloop = choice == "uvloop" or (
        choice == "auto" and importlib.util.find_spec("uvloop") is not None
    )
    if wants_uvloop:
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def share_gil() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)


async def tend_collector(app: web.Application) -> AsyncIterator[None]:
    """Take collection in hand once the exams are loaded, and give it back on shutdown.

    Banks, candidates and tiles live as long as the process, so what start-up built is frozen
    (`gc.freeze`) and no later collection walks it. Automatic collection is then switched off
    and `collect_on_schedule` collects every few minutes, freezing the survivors. Why not the
    automatic collector: its young generation is counted in objects made minus objects freed,
    and a serving node replaces its objects as fast as it makes them (every socket's pending
    read, every sitting's snapshot), so the count grows slowly while the generation grows with
    every message. At 10,000 sittings a young collection walked over 100,000 objects (100–250
    ms with the loop stopped) and a full one 1.1 million (0.7 s). Here each collection walks
    only what was made since the last one; what dies in a reference cycle after being frozen
    waits for the thaw.

    Registered after `create_app`'s own contexts, so it runs once the exams are loaded.
    """
    hall = app.get(keys.HALL)
    quiet = hall.is_quiet if hall is not None else (lambda: True)
    async with collection_in_hand(quiet):
        log.info("collector: %d objects frozen, automatic collection off", gc.get_freeze_count())
        pauses = app.get(keys.COLLECTOR)
        if pauses is not None:
            pauses.install()  # from here on: start-up's collection is not a pause anyone waits on
        yield
        if pauses is not None:
            pauses.uninstall()


@contextlib.asynccontextmanager
async def collection_in_hand(quiet: Callable[[], bool]) -> AsyncIterator[None]:
    """Collect and freeze what exists, switch automatic collection off and run
    `collect_on_schedule` until the block ends; then automatic collection is back on."""
    gc.collect()
    gc.freeze()
    gc.disable()
    task = asyncio.create_task(collect_on_schedule(quiet=quiet))
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        gc.enable()


async def collect_on_schedule(
    every_s: float = COLLECT_EVERY_S,
    after_allocations: int = COLLECT_AFTER_ALLOCATIONS,
    thaw_every_s: float = THAW_EVERY_S,
    check_every_s: float = 1.0,
    *,
    quiet: Callable[[], bool] = lambda: True,
    thaw_at_least_every_s: float = THAW_AT_LEAST_EVERY_S,
) -> None:
    """Collect everything not frozen, then freeze the survivors, on time or on allocations.

    On allocations while a candidate would wait on it (not `quiet()`), only freeze them. A
    collection thaws first when `thaw_every_s` have passed since the last thaw and `quiet()`
    says no candidate would wait on it, or when `thaw_at_least_every_s` have passed.
    """
    collected_at = thawed_at = time.monotonic()
    while True:
        await asyncio.sleep(check_every_s)
        now = time.monotonic()
        since_thaw = now - thawed_at
        thaw = since_thaw >= thaw_at_least_every_s or (since_thaw >= thaw_every_s and quiet())
        on_time = now - collected_at >= every_s
        if not thaw and not on_time and gc.get_count()[0] < after_allocations:
            continue
        if thaw:
            gc.unfreeze()
            thawed_at = now
        elif not on_time and not quiet():
            # Many new objects while candidates answer: freeze them without a walk, which at
            # 10,000 sittings stopped every answer for 0.2–0.5 s (docs/performance.md). Cycles
            # among them wait for the thaw; the scheduled collection still comes on time.
            gc.freeze()
            continue
        gc.collect()
        gc.freeze()
        collected_at = time.monotonic()
