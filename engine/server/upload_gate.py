"""When to turn media uploads away for a while, so that answers keep their time.

An answer must be acknowledged within tens of milliseconds; a media chunk can wait, since the
candidate's page keeps it (up to 64 MiB) and sends it again. So when the node falls behind —
its event loop woke late, or uploads pile up unanswered — a new upload is refused with
``503 busy`` and a ``Retry-After`` at once, before its token is checked or its body read, and
the cores go to the answers first. Nothing is lost: the upload was never acknowledged.

On the media socket the same test holds an upload instead (`take_turn`): its page waits for the
reply and sends nothing more meanwhile, so there is no refusal to write and no upload sent
again, which cost a node that is behind about what taking it does.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from engine.latency import LoopLag, Uploads


@dataclass(slots=True)
class UploadGate:
    most_at_once: int = 256
    """Uploads under way at once beyond which new ones wait (at 1,000 a second answered in
    5 ms each, about 5 are under way)."""
    late_s: float | None = 0.1
    """A loop that woke this late (None: never mind the loop)…"""
    calm_s: float = 2.0
    """…turns uploads away for this long after."""
    retry_after_s: tuple[int, int] = (5, 15)
    """The wait asked of the page, drawn from this range so that turned-away uploads do not
    come back together…"""
    longest_wait_s: int = 60
    """…whose top grows, up to this, to the time the node needs to take what it turned away
    in the last `window_s` at the rate it took uploads meanwhile: a turned-away request costs
    the loop about what a taken one does, so while the node stays behind, fewer come back."""
    window_s: float = 10.0
    turned_away: Counter[str] = field(default_factory=Counter)
    """Uploads turned away, by why: `many_under_way`, `late_loop`."""
    _marks: deque[tuple[float, int, int]] = field(default_factory=deque)
    """(when, turned away so far, uploads answered so far), about once a second."""
    _rng: random.Random = field(default_factory=random.Random)
    held: int = 0
    """Media-socket uploads that had to wait for their turn, since start."""
    _turns: deque[asyncio.Future[None]] = field(default_factory=deque)
    _releaser: asyncio.Task[None] | None = None
    recheck_s: float = 0.05
    release_floor_per_s: float = 50.0
    """Held uploads let go per second at the least, while the node has room."""
    release_rate_per_s: float = 0.0
    """The pace held uploads go at now (0 while none are held)."""

    @property
    def holding(self) -> int:
        return len(self._turns)

    def has_room(self, uploads: Uploads, loop_lag: LoopLag) -> bool:
        late = self.late_s is not None and loop_lag.woke_late_within(self.late_s, self.calm_s)
        return uploads.under_way < self.most_at_once and not late

    async def take_turn(self, uploads: Uploads, loop_lag: LoopLag) -> None:
        """Return once the node has room for one more upload, first come first served."""
        self._mark(uploads, time.monotonic())
        if not self._turns and self.has_room(uploads, loop_lag):
            return
        self.held += 1
        turn = asyncio.get_running_loop().create_future()
        self._turns.append(turn)
        if self._releaser is None or self._releaser.done():
            self._releaser = asyncio.create_task(self._release(uploads, loop_lag))
        try:
            await turn
        except asyncio.CancelledError:
            if turn in self._turns:
                self._turns.remove(turn)
            raise

    async def _release(self, uploads: Uploads, loop_lag: LoopLag) -> None:
        """Let held uploads go in order while there is room, paced; one task for all of them.

        They go at the rate the node answered uploads before it held them, halved whenever its
        loop woke late again and raised a tenth for each second it did not. Let go 32 a turn
        of the loop instead, they kept a saturated node late, and so holding, for seconds at a
        time: at 10,000 sittings with uploads, answers then waited 110–160 ms at p50.
        """
        rate = max(self.release_floor_per_s, self._taken_per_s(uploads, time.monotonic()))
        allowance = 0.0
        looked_at = time.monotonic()
        try:
            while self._turns:
                self.release_rate_per_s = rate
                await asyncio.sleep(self.recheck_s)
                now = time.monotonic()
                elapsed, looked_at = now - looked_at, now
                late = self.late_s is not None and loop_lag.woke_late_within(self.late_s, elapsed)
                if late:
                    rate = max(self.release_floor_per_s, rate / 2)
                if not self.has_room(uploads, loop_lag):
                    allowance = 0.0
                    continue
                rate *= 1.0 + 0.1 * min(elapsed, 1.0)
                most = rate * 2 * self.recheck_s + 1  # a late look does not let a flood go
                allowance = min(allowance + rate * elapsed, most)
                free = self.most_at_once - uploads.under_way
                for _ in range(max(0, min(int(allowance), free, len(self._turns)))):
                    turn = self._turns.popleft()
                    allowance -= 1
                    if not turn.done():
                        turn.set_result(None)
        finally:
            self.release_rate_per_s = 0.0

    def _mark(self, uploads: Uploads, now: float) -> None:
        """Note (when, turned away so far, answered so far) about once a second, for the last
        `window_s`: the rates both the waits asked and the pace of held uploads come from."""
        if not self._marks or now - self._marks[-1][0] >= 1.0:
            self._marks.append((now, sum(self.turned_away.values()), uploads.answered))
        while len(self._marks) > 1 and now - self._marks[0][0] > self.window_s:
            self._marks.popleft()

    def _taken_per_s(self, uploads: Uploads, now: float) -> float:
        """Uploads answered per second since the oldest mark (over at least a second)."""
        if not self._marks:
            return 0.0
        since, _, answered_then = self._marks[0]
        return (uploads.answered - answered_then) / max(now - since, 1.0)

    def why_wait(self, uploads: Uploads, loop_lag: LoopLag) -> str | None:
        """Why a new upload should wait now, or None to take it."""
        if uploads.under_way >= self.most_at_once:
            self.turned_away["many_under_way"] += 1
            return f"{uploads.under_way} uploads are under way"
        if self.late_s is not None and loop_lag.woke_late_within(self.late_s, self.calm_s):
            self.turned_away["late_loop"] += 1
            return "the server is behind with answers"
        return None

    def retry_after(self, uploads: Uploads) -> int:
        """Seconds the page should wait before sending this upload again."""
        now = time.monotonic()
        self._mark(uploads, now)
        turned_then = self._marks[0][1]
        turned = sum(self.turned_away.values())
        to_take_s = (turned - turned_then) / max(self._taken_per_s(uploads, now), 1.0)
        low, high = self.retry_after_s
        return self._rng.randint(low, int(min(self.longest_wait_s, max(high, to_take_s))))
