"""One timer for every sitting's deadline and warnings: a heap and a single armed call.

Deadlines are UTC wall-clock times (they persist across restarts); the wait until the next one
is measured on the loop's monotonic clock and checked against the wall clock when it fires, so a
step of the system clock cannot end a sitting early.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable, Iterable


class DeadlineScheduler:
    """Calls `fire(sitting_id, tag)` at each scheduled time; `set` replaces a sitting's times."""

    def __init__(
        self, fire: Callable[[str, str], None], *, now: Callable[[], float] = time.time
    ) -> None:
        self._fire = fire
        self._now = now
        self._heap: list[tuple[float, int, str, str, int]] = []
        self._generation: dict[str, int] = {}
        self._counter = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None

    def __len__(self) -> int:
        return len(self._generation)

    def set(self, sitting_id: str, times: Iterable[tuple[float, str]]) -> None:
        generation = next(self._counter)
        self._generation[sitting_id] = generation
        for when, tag in times:
            heapq.heappush(self._heap, (when, next(self._counter), sitting_id, tag, generation))
        self._arm()

    def clear(self, sitting_id: str) -> None:
        """Forget a sitting's times; its heap entries are dropped when they surface."""
        self._generation.pop(sitting_id, None)

    def _drop_stale_top(self) -> None:
        while self._heap and self._heap[0][4] != self._generation.get(self._heap[0][2]):
            heapq.heappop(self._heap)

    def _arm(self) -> None:
        self._drop_stale_top()
        if not self._heap:
            return
        earliest = self._heap[0][0]
        if self._armed_for is not None and self._armed_for <= earliest and self._handle:
            return
        if self._handle is not None:
            self._handle.cancel()
        loop = asyncio.get_running_loop()
        self._armed_for = earliest
        self._handle = loop.call_later(max(0.0, earliest - self._now()), self._wake)

    def _wake(self) -> None:
        self._handle = None
        self._armed_for = None
        now = self._now()
        due = []
        while self._heap and self._heap[0][0] <= now:
            _, _, sitting_id, tag, generation = heapq.heappop(self._heap)
            if generation == self._generation.get(sitting_id):
                due.append((sitting_id, tag))
        for sitting_id, tag in due:
            self._fire(sitting_id, tag)
        self._arm()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self._armed_for = None
