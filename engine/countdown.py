"""The remaining time a client shows, from the server's clocks (docs/protocol.md 2.3).

A figure that arrives late shows more time than is left, by as long as it was on its way. So
while the server's deadline stays where it was, the client keeps whichever recent figure shows
the least, and the countdown does not jump back up because one frame was slow. A new deadline
(time granted, a pause, a resume) or a new state is taken as it comes. A kept figure gives way
after `KEEP_S`, so a client clock that runs fast cannot pull the countdown down for long. The
page's `clients/web/js/clock.js` follows the same rule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

KEEP_S = 60.0


@dataclass
class Countdown:
    """The server's remaining time as last taken, counted down on the monotonic clock."""

    remaining_s: float | None = None
    taken_at: float = 0.0
    """`time.monotonic()` when the kept figure was true (its arrival, less its age)."""
    running: bool = False
    deadline: float | None = None

    def update(
        self,
        remaining_ms: int,
        state: str,
        deadline: float | None,
        *,
        age_s: float = 0.0,
        now: float | None = None,
    ) -> bool:
        """The server's clock as it stands (welcome, `clock`); whether it was taken."""
        now = time.monotonic() if now is None else now
        running = state == "running"
        kept = running and self.running and deadline is not None and deadline == self.deadline
        if kept and not self._better(remaining_ms, age_s, now):
            return False
        self._take(remaining_ms, running, age_s, now)
        self.deadline = deadline if running else None
        return True

    def offer(
        self, remaining_ms: int, state: str, *, age_s: float = 0.0, now: float | None = None
    ) -> bool:
        """A figure that does not say where the deadline is (pong, warning): while running it
        is taken only where it shows less."""
        now = time.monotonic() if now is None else now
        running = state == "running"
        if running and self.running and not self._better(remaining_ms, age_s, now):
            return False
        if running != self.running:
            self.deadline = None
        self._take(remaining_ms, running, age_s, now)
        return True

    def shown_s(self, now: float | None = None) -> float | None:
        """Time left now as the client shows it."""
        if self.remaining_s is None:
            return None
        return max(0.0, self._unclamped(time.monotonic() if now is None else now))

    def _unclamped(self, now: float) -> float:
        assert self.remaining_s is not None
        if not self.running:
            return self.remaining_s
        return self.remaining_s - (now - self.taken_at)

    def _better(self, remaining_ms: int, age_s: float, now: float) -> bool:
        if self.remaining_s is None or now - self.taken_at > KEEP_S:
            return True
        return remaining_ms / 1000 - age_s < self._unclamped(now)

    def _take(self, remaining_ms: int, running: bool, age_s: float, now: float) -> None:
        self.remaining_s = remaining_ms / 1000
        self.taken_at = now - age_s
        self.running = running
