"""Media waits while answers are late: how many uploads are stored at once follows the loop's lag.

An upload costs the node about three times an answer's CPU (docs/performance.md), and a page
keeps its chunks until they are acknowledged, so when the node is full it is the uploads that
should wait. `MediaGate` lets a number through at once: about one more per round of uploads
while the event loop keeps up, half as many when it wakes late (additive increase,
multiplicative decrease, as TCP shares a link). An upload waits before its body is read, so a
waiting one holds its connection, not the node's CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

MOST_AT_ONCE = 256
LEAST_AT_ONCE = 2
LATE_S = 0.05
"""The loop is late when a recent wake-up came this much after its time."""
HALVE_AT_MOST_EVERY_S = 0.5
"""After halving, the gate waits this long before halving again, so a lag that only stored
uploads can end is not answered twice."""


class MediaGate:
    """Admits uploads up to a limit that follows `recent_lag_s()` (seconds)."""

    def __init__(
        self,
        recent_lag_s: Callable[[], float],
        *,
        most: int = MOST_AT_ONCE,
        least: int = LEAST_AT_ONCE,
        late_s: float = LATE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._recent_lag_s = recent_lag_s
        self._most, self._least, self._late_s = most, least, late_s
        self._clock = clock
        self.limit = float(most)
        self.in_use = 0
        self.halved = 0
        self._halved_at = float("-inf")
        self._waiting: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self._acquire()
        try:
            yield
        finally:
            self._release()

    def stats(self) -> dict[str, float | int]:
        return {
            "limit": round(self.limit, 1),
            "in_use": self.in_use,
            "waiting": len(self._waiting),
            "halved": self.halved,
        }

    async def _acquire(self) -> None:
        if self.in_use < int(self.limit) and not self._waiting:
            self.in_use += 1
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append(turn)
        try:
            await turn  # the slot is handed over already counted
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._release()  # handed a slot while being cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # still queued: leave the queue
                    self._waiting.remove(turn)
            raise

    def _release(self) -> None:
        self.in_use -= 1
        self._adapt()
        while self._waiting and self.in_use < int(self.limit):
            turn = self._waiting.popleft()
            if not turn.done():
                self.in_use += 1
                turn.set_result(None)

    def _adapt(self) -> None:
        now = self._clock()
        if self._recent_lag_s() >= self._late_s:
            if now - self._halved_at >= HALVE_AT_MOST_EVERY_S and self.limit > self._least:
                self.limit = max(float(self._least), self.limit / 2)
                self._halved_at = now
                self.halved += 1
        else:
            self.limit = min(float(self._most), self.limit + 1 / self.limit)
