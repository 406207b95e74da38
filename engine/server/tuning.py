"""Process-wide settings of a serving node: which event loop, how threads share the GIL, and
how the collector runs.

They live here, applied by `examhall serve`, and not in `create_app`, because they change the
whole process: tests build many apps in one interpreter and must not inherit them.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from engine.server import keys

log = logging.getLogger("examhall.tuning")

LOOPS = ("auto", "uvloop", "asyncio")

SWITCH_INTERVAL_S = 0.001
"""How long the loop thread may keep the GIL while the store's writer waits for it (Python's
default is 5 ms). The writer gives the GIL up around every SQLite statement and waits up to
this long to get it back, several times per group commit: at 10,000 sittings the recent
commits' p99 was 83 and 56 ms at 5 ms, 42 and 44 ms at 1 ms (docs/performance.md)."""

THAW_EVERY_S = 900.0
"""How often everything frozen is walked again, so cycles that died frozen are freed."""

COLLECTOR_THRESHOLD = (5_000, 20, 10)
"""Young collections every 5,000 net allocations instead of 700.

The count is allocations minus deallocations, so the young generation holds far more than
it: every answer replaces an old snapshot with a young one, and each socket's pending read is
young. At 50,000 a young collection walked several hundred thousand objects (190 ms).
"""


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


async def settle_collector(app: web.Application) -> None:
    """Once the exams are loaded: move what start-up built out of the collector's way.

    Banks, candidates and tiles live as long as the process; `gc.freeze` stops every full
    collection from walking them again.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLD)
    pauses = app.get(keys.COLLECTOR)
    if pauses is not None:
        pauses.install()  # from here on: start-up's own collection is not a pause anyone waits on
    log.info(
        "collector: %d objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold()
    )


def share_gil() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)


async def tend_collector(app: web.Application) -> AsyncIterator[None]:
    """Freeze what survives each full collection, so the next one walks only what came after.

    Left to itself a full collection walks every object of the sittings (1.1 million at
    10,000 sittings: 0.7 s with the loop stopped, measured), and one comes whenever that heap
    has grown by a quarter. With the survivors frozen, the next full collection walks only
    what was made since. Frozen objects that later die in a reference cycle wait for the
    thaw, every `THAW_EVERY_S`, which walks everything once.
    """
    gc.callbacks.append(_freeze_after_full_collection)
    task = asyncio.create_task(_thaw_periodically())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    gc.callbacks.remove(_freeze_after_full_collection)


def _freeze_after_full_collection(phase: str, info: dict[str, int]) -> None:
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


async def _thaw_periodically() -> None:
    while True:
        await asyncio.sleep(THAW_EVERY_S)
        gc.unfreeze()
        gc.collect()  # frozen again by the callback
