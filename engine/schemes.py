"""What a scoring scheme is: the base class plugins subclass, and the result it returns.

A scheme turns a part's response matrix into one `PartResult` per candidate. Schemes come from
plugins (`engine.hookspecs`); the KZ and UA rules ship as built-in plugins in `plugins/`.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.model import Exam, Part
from engine.scoring import ResponseMatrix


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SCORED = "scored"
    """A score without a verdict of its own (UA parts feed a rating)."""
    ANNULLED = "annulled"


@dataclass(frozen=True, slots=True)
class PartResult:
    candidate_id: str
    part_id: str
    score: float
    max_score: float
    outcome: Outcome
    reasons: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate_id,
            "part": self.part_id,
            "score": self.score,
            "max_score": self.max_score,
            "outcome": self.outcome.value,
            "reasons": list(self.reasons),
            "details": dict(self.details),
        }


class Scheme(ABC):
    """A scoring scheme. Subclass it in a plugin and register an instance."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    shows_result_to_candidate: ClassVar[bool] = True

    @abstractmethod
    def score_part(self, exam: Exam, part: Part, matrix: ResponseMatrix) -> list[PartResult]:
        """One result per row of `matrix`, in the same order."""

    def annulled(self, exam: Exam, part: Part, candidate_id: str, reason: str) -> PartResult:
        """The result of a terminated sitting: kept for audit, never counted (KZ-5)."""
        return PartResult(
            candidate_id, part.id, 0.0, float(part.blueprint.total), Outcome.ANNULLED, (reason,)
        )
