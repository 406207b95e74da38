"""Process-wide settings of a serving node: which event loop, and how the collector runs.

They live here, applied by `examhall serve`, and not in `create_app`, because they change the
whole process: tests build many apps in one interpreter and must not inherit them.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging

from aiohttp import web

log = logging.getLogger("examhall.tuning")

LOOPS = ("auto", "uvloop", "asyncio")

COLLECTOR_THRESHOLD = (50_000, 20, 100)
"""Young collections every 50,000 allocations instead of 700.

At 10,000 sittings the heap holds about 1.8 million tracked objects (forms, answers, tiles)
that live for the whole sitting; with the default thresholds a full collection walks them all
every few seconds and stops the loop for 0.4–1.4 s while finding nothing to free.
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
    log.info(
        "collector: %d objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold()
    )
