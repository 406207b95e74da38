"""What the engine needs from persistence, as a small interface.

The embedded default is SQLite (`engine.store.sqlite`); another engine (PostgreSQL) would implement
the same methods. The one promise every implementation keeps: when `record` returns, the event,
the sitting's new snapshot and its answer are durable and in the journal, in call order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from engine.model import Candidate
from engine.sitting import AnswerRecord, SittingEvent, Snapshot


@dataclass(frozen=True, slots=True)
class StoredSitting:
    snapshot: Snapshot
    answers: tuple[AnswerRecord, ...]


@dataclass(frozen=True, slots=True)
class Redemption:
    """Who an access code belonged to."""

    exam_id: str
    candidate_id: str


class Store(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def server_secret(self) -> bytes:
        """The key tokens are signed with; made once per data directory."""
        ...

    async def register_exam(
        self, exam_id: str, candidates: Sequence[Candidate], code_hashes: dict[str, str]
    ) -> bytes:
        """Add the exam and any candidates not yet known; return the exam's form secret.

        `code_hashes` maps candidate id to the hash of a new access code; candidates that already
        have a code keep theirs.
        """
        ...

    async def known_candidates(self, exam_id: str) -> set[str]: ...

    async def redeem_code(self, code_hash: str, now: float) -> Redemption:
        """Use a one-time access code; raises AuthError if unknown or already used."""
        ...

    async def release_code(self, code_hash: str) -> None:
        """Undo `redeem_code`: its holder was refused admission and may come back later."""
        ...

    async def replace_code(
        self, exam_id: str, candidate_id: str, code_hash: str, event: SittingEvent
    ) -> None:
        """Give the candidate a new one-time access code at `event.at`: the old code stops
        working, so do tokens issued before; `event` is journaled with it."""
        ...

    async def replaced_tokens(self) -> dict[tuple[str, str], float]:
        """(exam, candidate) → when their tokens were last replaced by a new access code."""
        ...

    async def unused_codes(self, exam_id: str) -> set[str]:
        """Candidate ids whose access code is still unused (for the demo roster)."""
        ...

    async def load_sitting(self, sitting_id: str) -> StoredSitting | None: ...

    async def sittings_of(self, exam_ids: Collection[str]) -> list[StoredSitting]:
        """Every sitting of these exams, with its answers (not those of other exams)."""
        ...

    async def open_sittings(self) -> list[StoredSitting]:
        """Every sitting that is checked in, running or paused: the scheduler's work on start."""
        ...

    async def record(self, event: SittingEvent, snapshot: Snapshot) -> int:
        """Make the event, the snapshot and its answer durable; returns the journal seq."""
        ...

    def record_soon(self, event: SittingEvent, snapshot: Snapshot) -> asyncio.Future[int]:
        """`record` without the coroutine: queued at once, the future resolves when durable."""
        ...

    async def events_of(self, sitting_id: str) -> list[dict[str, Any]]: ...

    async def save_result(self, sitting_id: str, result: dict[str, Any], at: float) -> None: ...

    async def load_result(self, sitting_id: str) -> dict[str, Any] | None: ...

    def stats(self) -> dict[str, Any]:
        """Commits so far and how long the recent ones took, for the health endpoint."""
        ...
