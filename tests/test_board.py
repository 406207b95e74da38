"""The board's watcher queue: a watcher that cannot keep up is resynced, never waited for."""

from __future__ import annotations

import asyncio

from engine.server.board import Watcher


async def test_a_stuck_watcher_keeps_a_bounded_queue_and_resyncs() -> None:
    never = asyncio.Event()
    sent: list[bytes] = []

    async def stuck_send(frame: bytes) -> None:
        sent.append(frame)
        await never.wait()

    watcher = Watcher(stuck_send, lambda: [b"FULL"], limit=8)
    watcher.start()
    for n in range(1000):
        watcher.offer(f"change {n}".encode())
    await asyncio.sleep(0.05)
    assert len(watcher._queue) <= 8
    assert watcher.resyncs > 100
    assert len(sent) == 1, "the stuck socket holds one frame; nothing else waits on it"
    await watcher.stop()


async def test_a_watcher_that_keeps_up_gets_every_frame_in_order() -> None:
    sent: list[bytes] = []

    async def send(frame: bytes) -> None:
        sent.append(frame)

    watcher = Watcher(send, lambda: [b"FULL"], limit=8)
    watcher.start()
    for n in range(100):
        watcher.offer(str(n).encode())
        await asyncio.sleep(0)
    await asyncio.sleep(0.01)
    assert sent == [str(n).encode() for n in range(100)] and watcher.resyncs == 0
    await watcher.stop()
