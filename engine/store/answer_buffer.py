"""Answers already durable in the journal, waiting to be written into the answers table together.

The answers table is clustered by sitting, so a row lands on its sitting's page. With a thousand
sittings answering at once, every answer of a group commit dirtied a page of its own, and each
dirty page is a 4 KiB frame in the write-ahead log: half of what the writer did per answer
(docs/performance.md). The journal already makes an answer durable (its body holds the sitting,
seq, item, choice and flag), so the table row can wait. Rows collect here for `lag_s` and are then
written in sitting order, a slice per group commit, so a sitting's answers of that second share
one page. Slices keep each commit's share of the work near what arrived meanwhile: exam-day load,
where a sitting answers every few seconds, sees about the writes it saw before, spread as before.

Readers never see the difference: the store writes everything held here before any job that may
read answers, in the commit that closes a sitting, when idle, and on close; and on open it writes
what a crash left only in the journal (everything after the ``answers-indexed-to`` mark).

Writer thread only. `mark` and `restore` undo what a failed run or batch added or took.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

Row = tuple[Any, ...]
"""(sitting id, seq, item id, choice, flagged, at, journal seq): an answers row."""

_JOURNAL_SEQ = 6
_by_sitting_then_seq = operator.itemgetter(0, 1)


@dataclass(frozen=True, slots=True)
class Mark:
    """Where the buffer stood, to go back to if what followed is rolled back."""

    filling: dict[str, list[Row]]
    filling_since: float | None
    filling_first_seq: int
    appended: int
    draining: list[Row]
    drained: int
    draining_first_seq: int
    highest_changes: int


class AnswerBuffer:
    """Rows of the answers table not written yet, and the highest seq per sitting."""

    def __init__(self, lag_s: float = 1.0, slice_min: int = 32) -> None:
        self.lag_s = lag_s
        self.slice_min = slice_min
        self._filling: dict[str, list[Row]] = {}
        """The generation being collected, by sitting."""
        self._filling_since: float | None = None
        self._filling_first_seq = 0
        self._appended: list[tuple[dict[str, list[Row]], str]] = []
        """Where each row added since the last `settle` went, in order (for `restore`)."""
        self._draining: list[Row] = []
        """The previous generation in sitting order; `_draining[_drained:]` is still to write."""
        self._drained = 0
        self._draining_first_seq = 0
        self._highest: dict[str, int] = {}
        """The highest answer seq stored or held per sitting seen since open."""
        self._highest_changes: list[tuple[str, int | None]] = []

    def __bool__(self) -> bool:
        return bool(self._filling) or self._drained < len(self._draining)

    # -- what a batch does -------------------------------------------------------------------

    def highest(self, sitting_id: str) -> int | None:
        """The highest seq known for the sitting, or None if it was not seen since open."""
        return self._highest.get(sitting_id)

    def note_highest(self, sitting_id: str, seq: int) -> None:
        self._highest_changes.append((sitting_id, self._highest.get(sitting_id)))
        self._highest[sitting_id] = seq

    def add(self, row: Row, now: float) -> None:
        sitting_id = row[0]
        rows = self._filling.get(sitting_id)
        if rows is None:
            self._filling[sitting_id] = [row]
        else:
            rows.append(row)
        if self._filling_since is None:
            self._filling_since = now
            self._filling_first_seq = row[_JOURNAL_SEQ]
        self._appended.append((self._filling, sitting_id))

    def next_slice(self, added: int, now: float) -> list[Row]:
        """What to write in this commit: a slice of the old generation, about `added` rows.

        A new generation starts draining once the old one is written and the filling one is
        `lag_s` old.
        """
        if self._drained >= len(self._draining):
            if self._filling_since is None or now - self._filling_since < self.lag_s:
                return []
            self._rotate()
        size = max(2 * added, self.slice_min)
        start = self._drained
        self._drained = min(len(self._draining), start + size)
        return self._draining[start : self._drained]

    def take_all(self) -> list[Row]:
        """Everything held, in sitting order (before a read, a closing, idle time, close)."""
        rest = self._draining[self._drained :]
        self._rotate()
        everything = rest + self._draining
        self._draining, self._drained = [], 0
        return everything

    def indexed_to(self, head_seq: int) -> int:
        """The journal seq up to which every answer is in the table once this commit lands."""
        if self._drained < len(self._draining):
            return self._draining_first_seq - 1  # kept for the whole generation: O(1)
        if self._filling_since is not None:
            return self._filling_first_seq - 1
        return head_seq

    def _rotate(self) -> None:
        rows = [row for rows in self._filling.values() for row in rows]
        rows.sort(key=_by_sitting_then_seq)
        self._draining, self._drained = rows, 0
        self._draining_first_seq = self._filling_first_seq
        self._filling, self._filling_since = {}, None

    # -- undo --------------------------------------------------------------------------------

    def mark(self) -> Mark:
        return Mark(
            self._filling,
            self._filling_since,
            self._filling_first_seq,
            len(self._appended),
            self._draining,
            self._drained,
            self._draining_first_seq,
            len(self._highest_changes),
        )

    def restore(self, mark: Mark) -> None:
        """Undo every add, slice and take since `mark` (nothing written since then stays)."""
        for generation, sitting_id in reversed(self._appended[mark.appended :]):
            rows = generation[sitting_id]
            rows.pop()
            if not rows:
                del generation[sitting_id]
        del self._appended[mark.appended :]
        self._filling = mark.filling
        self._filling_since = mark.filling_since if mark.filling else None
        self._filling_first_seq = mark.filling_first_seq
        self._draining, self._drained = mark.draining, mark.drained
        self._draining_first_seq = mark.draining_first_seq
        while len(self._highest_changes) > mark.highest_changes:
            sitting_id, before = self._highest_changes.pop()
            if before is None:
                self._highest.pop(sitting_id, None)
            else:
                self._highest[sitting_id] = before

    def settle(self) -> None:
        """The commit landed: nothing before now can be undone any more."""
        self._appended.clear()
        self._highest_changes.clear()
