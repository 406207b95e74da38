"""The serving process's collector rhythm: survivors of a full collection are frozen."""

from __future__ import annotations

import gc

from aiohttp import web

from engine.server import tuning


async def test_what_survives_a_full_collection_is_frozen_until_the_tending_stops() -> None:
    gc.unfreeze()
    app = web.Application()
    tending = tuning.tend_collector(app)
    await anext(tending)
    try:
        survivors = [[n] for n in range(1000)]  # tracked objects made after the start
        assert gc.get_freeze_count() == 0
        gc.collect()
        frozen = gc.get_freeze_count()
        assert frozen >= len(survivors)
        gc.collect(0)  # a young collection freezes nothing more
        assert gc.get_freeze_count() <= frozen
    finally:
        await anext(tending, None)
        gc.unfreeze()
    gc.collect()
    assert gc.get_freeze_count() == 0  # the hook is gone with the tending
