"""Recent delays as percentiles, and how late the event loop runs what is due.

`LoopLag` asks to wake every `period_s` and records how late it woke: the delay every answer and
clock waits on top of its own work; `CollectorPauses` times the garbage collector's stops;
`Uploads` counts the media uploads under way and times the recent ones. `/api/v1/health`
reports them and the store's recent commits, so an operator sees a stalled loop, or uploads
falling behind, before candidates report a slow page, and the benchmark can tell server stalls
from its own.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

log = logging.getLogger("examhall.latency")


class LoopLag:
    """Recent wake-up delays of the running loop, in seconds."""

    NOTED_S = 0.01

    def __init__(
        self, period_s: float = 0.05, window_s: float = 60.0, warn_s: float | None = None
    ) -> None:
        self.period_s = period_s
        self.warn_s = warn_s
        """Lags of this many seconds or more are logged as they happen (None: never)."""
        self._lags: deque[float] = deque(maxlen=max(1, round(window_s / period_s)))
        self._woke: deque[tuple[float, float]] = deque(maxlen=64)
        """(when, how late) of the recent wake-ups `NOTED_S` late or more, oldest first."""

    async def run(self) -> None:
        while True:
            asked_at = time.perf_counter()
            await asyncio.sleep(self.period_s)
            woke_at = time.perf_counter()
            lag = max(0.0, woke_at - asked_at - self.period_s)
            self.add(lag, woke_at)

    def add(self, lag: float, at: float) -> None:
        """Record a wake-up `lag` seconds late at `at` (`time.perf_counter`)."""
        self._lags.append(lag)
        if lag >= self.NOTED_S:
            self._woke.append((at, lag))
        if self.warn_s is not None and lag >= self.warn_s:
            log.warning("event loop: woke %.0f ms late", lag * 1000)

    def summary_ms(self) -> dict[str, float]:
        """p50, p99 and max of the recent lags in milliseconds (zeros before the first)."""
        return percentiles_ms(self._lags)

    def woke_late_within(self, late_s: float, within_s: float) -> bool:
        """The loop woke `late_s` (at least `NOTED_S`) or more late within the last
        `within_s` seconds."""
        since = time.perf_counter() - within_s
        for at, lag in reversed(self._woke):
            if at < since:
                return False
            if lag >= late_s:
                return True
        return False


def percentiles_ms(seconds: deque[float] | list[float]) -> dict[str, float]:
    """p50 / p99 / max of durations in seconds, as rounded milliseconds."""
    if not seconds:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0, "samples": 0}
    values = np.fromiter(seconds, dtype=float) * 1000
    p50, p99 = np.percentile(values, [50, 99])
    return {
        "p50": round(float(p50), 2),
        "p99": round(float(p99), 2),
        "max": round(float(values.max()), 2),
        "samples": int(values.size),
    }


class Uploads:
    """Media uploads under way on this node, the most at once, and how long the recent ones took
    from their request to their answer.

    A node whose disk or cores cannot keep up shows it here first: uploads under way climb into
    the thousands and take seconds each, while answers may still look fine.
    """

    def __init__(self, kept: int = 1000) -> None:
        self.under_way = 0
        self.most_at_once = 0
        self.answered = 0
        self._took: deque[float] = deque(maxlen=kept)

    @contextmanager
    def one(self) -> Iterator[None]:
        began = time.perf_counter()
        self.under_way += 1
        self.most_at_once = max(self.most_at_once, self.under_way)
        try:
            yield
        finally:
            self.under_way -= 1
            self.answered += 1
            self._took.append(time.perf_counter() - began)

    def summary(self) -> dict[str, object]:
        return {
            "under_way": self.under_way,
            "most_at_once": self.most_at_once,
            "answered": self.answered,
            "recent_ms": percentiles_ms(self._took),
        }


class CollectorPauses:
    """How long the cyclic garbage collector stopped the process, per generation.

    A full collection walks every tracked object; at 10,000 sittings that is millions, and the
    loop stands still meanwhile. Installed by `examhall serve` (it hooks the whole process);
    pauses of `warn_s` or more are logged as they happen.
    """

    def __init__(self, warn_s: float = 0.1, recent: int = 100) -> None:
        self.warn_s = warn_s
        self.counts = [0, 0, 0]
        self._pauses: tuple[deque[float], ...] = tuple(deque(maxlen=recent) for _ in range(3))
        self._started_at = 0.0

    def install(self) -> None:
        gc.callbacks.append(self._on_collection)

    def uninstall(self) -> None:
        gc.callbacks.remove(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started_at = time.perf_counter()
            return
        generation = info["generation"]
        pause = time.perf_counter() - self._started_at
        self.counts[generation] += 1
        self._pauses[generation].append(pause)
        if pause >= self.warn_s:
            log.warning(
                "collector: generation %d took %.0f ms (%d collected)",
                generation,
                pause * 1000,
                info["collected"],
            )

    def summary_ms(self) -> dict[str, dict[str, float]]:
        """Per generation: collections so far and percentiles of the recent pauses."""
        return {
            f"gen{generation}": {"collections": self.counts[generation]}
            | percentiles_ms(self._pauses[generation])
            for generation in range(3)
        }
