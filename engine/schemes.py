"""What a scoring scheme is: the base class plugins subclass, and the values it takes and returns.

A scheme is registered through the `examhall_register_schemes` hook (`engine.hookspecs`) and is
then asked, for every exam that names it, the questions below. Only `score_part` must be
written; every other method has a neutral default, so a small scheme stays small.

| method             | answers                                                        |
|--------------------|----------------------------------------------------------------|
| `part_specs`       | which parts, how many items, how long, tagged how               |
| `score_part`       | a part's response matrix → one `PartResult` per candidate       |
| `annulled`/`absent`| the result of a terminated / no-show sitting                    |
| `combine`          | each candidate's part results → one `ExamResult`                |
| `rank`             | exam results → rating lists (per office, …), ties ordered       |
| `result_terms`     | a result's validity end and earliest retake date                |
| `admit`            | may this person sit now, given their earlier sittings           |
| `appeal_policy`    | whether results can be appealed, by when, decided how           |
| `document_kinds`   | which documents the scheme produces …                           |
| `build_documents`  | … and their content, from the exam's `ResultsBook`              |

Everything a scheme returns is checked by `engine.checked_scheme` before the engine uses it.
"""

from __future__ import annotations

import datetime
import enum
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from engine.model import Candidate, Exam, Part
from engine.scoring import ResponseMatrix

if TYPE_CHECKING:
    from engine.book import ResultsBook
    from engine.documents import Document


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SCORED = "scored"
    """A score without a verdict of its own (UA parts feed a rating)."""
    ANNULLED = "annulled"
    """Terminated for a violation: kept for audit, never counted (KZ-5, UA-3)."""
    ABSENT = "absent"
    """Did not appear in time: final (UA-7)."""
    INCOMPLETE = "incomplete"
    """An exam result that lacks a part (not yet sat)."""


@dataclass(frozen=True, slots=True)
class PartResult:
    """One candidate's result for one part; `details` is the scheme's own, JSON-ready."""

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

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> PartResult:
        """The inverse of `to_json`; `ValueError` names the field that is missing or wrong."""
        try:
            candidate, part = body["candidate"], body["part"]
            score, max_score = body["score"], body["max_score"]
            outcome = Outcome(body["outcome"])
        except KeyError as missing:
            raise ValueError(f"a stored result lacks {missing}") from None
        if not isinstance(candidate, str) or not isinstance(part, str):
            raise ValueError("a stored result's candidate and part must be strings")
        for label, value in (("score", score), ("max_score", max_score)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"a stored result's {label} is {value!r}, not a number")
        reasons = body.get("reasons", [])
        details = body.get("details", {})
        if not isinstance(reasons, list) or not isinstance(details, dict):
            raise ValueError("a stored result's reasons must be a list and details an object")
        return cls(
            candidate, part, float(score), float(max_score), outcome, tuple(reasons), details
        )


@dataclass(frozen=True, slots=True)
class ExamResult:
    """One candidate's result over all parts of an exam."""

    candidate_id: str
    score: float
    max_score: float
    outcome: Outcome
    part_scores: Mapping[str, float] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate_id,
            "score": self.score,
            "max_score": self.max_score,
            "outcome": self.outcome.value,
            "parts": dict(self.part_scores),
            "reasons": list(self.reasons),
            "details": dict(self.details),
        }


@dataclass(frozen=True, slots=True)
class RatingEntry:
    """A place in a rating list. Candidates tied under the tie rule share a `position`."""

    position: int
    candidate_id: str
    score: float
    part_scores: Mapping[str, float] = field(default_factory=dict)
    tied: bool = False
    """True when another entry has the same position."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Who the first N posts go to, and who is tied across the last post (a group decision)."""

    posts: int
    chosen: tuple[str, ...]
    tied_at_boundary: tuple[str, ...]
    """Candidates sharing the position that crosses the last post; `chosen` excludes them."""


@dataclass(frozen=True, slots=True)
class RatingList:
    """One rating list (UA: one per local office), best first."""

    group: str
    entries: tuple[RatingEntry, ...]
    unranked: tuple[tuple[str, str], ...] = ()
    """(candidate id, why not ranked): removed, absent, a part missing."""
    tie_rule: str = ""
    """How equal scores are ordered, in words: printed under the list."""

    def top(self, posts: int) -> Selection:
        """The candidates for `posts` posts, high to low (UA-17); a tie across the cut is named."""
        if posts < 0:
            raise ValueError(f"the number of posts must not be negative, got {posts}")
        chosen: list[str] = []
        tied: list[str] = []
        for position in sorted({entry.position for entry in self.entries}):
            group = [e.candidate_id for e in self.entries if e.position == position]
            if len(chosen) + len(group) <= posts:
                chosen.extend(group)
            else:
                if len(chosen) < posts:
                    tied = group
                break
        return Selection(posts, tuple(chosen), tuple(tied))


@dataclass(frozen=True, slots=True)
class PartSpec:
    """A part a scheme expects: the rules' numbers, compared with an exam file's part."""

    id: str
    items: int | None = None
    """Exactly this many items on a form."""
    max_items: int | None = None
    time_limit_s: int | None = None
    """Exactly this long."""
    max_time_limit_s: int | None = None
    dimension: str | None = None
    """The tag dimension the blueprint must draw by."""
    required_values: tuple[str, ...] = ()
    """Tag values that must be in the blueprint (the acts KZ-7 thresholds)."""
    rule: str = ""

    def problems(self, part: Part) -> list[str]:
        """How `part` departs from this spec, in words; empty when it conforms."""
        found: list[str] = []
        cite = f" ({self.rule})" if self.rule else ""
        total, limit = part.blueprint.total, part.time_limit_s
        if self.items is not None and total != self.items:
            found.append(f"part {part.id!r} has {total} items, the rules say {self.items}{cite}")
        if self.max_items is not None and total > self.max_items:
            found.append(
                f"part {part.id!r} has {total} items, the rules allow {self.max_items}{cite}"
            )
        if self.time_limit_s is not None and limit != self.time_limit_s:
            found.append(
                f"part {part.id!r} lasts {limit // 60} min, the rules say "
                f"{self.time_limit_s // 60} min{cite}"
            )
        if self.max_time_limit_s is not None and limit > self.max_time_limit_s:
            found.append(
                f"part {part.id!r} lasts {limit // 60} min, the rules allow "
                f"{self.max_time_limit_s // 60} min{cite}"
            )
        if self.dimension is not None and part.blueprint.dimension != self.dimension:
            found.append(
                f"part {part.id!r} draws by {part.blueprint.dimension!r}, the scheme needs "
                f"{self.dimension!r}{cite}"
            )
        missing = [value for value in self.required_values if value not in part.blueprint.counts]
        if missing:
            found.append(f"part {part.id!r} draws no items tagged {', '.join(missing)}{cite}")
        return found


@dataclass(frozen=True, slots=True)
class PastSitting:
    """An earlier sitting of the same person (matched by identity document) under this scheme."""

    exam_id: str
    part_id: str
    candidate_id: str
    state: str
    closed_at: float | None
    outcome: Outcome | None
    same_exam: bool


@dataclass(frozen=True, slots=True)
class AdmissionDecision:
    """Whether a person may sit; a refusal cites its rule and, if it ends, the first day allowed."""

    admitted: bool
    rule: str = ""
    reason: str = ""
    allowed_from: datetime.date | None = None


ADMITTED = AdmissionDecision(True)


@dataclass(frozen=True, slots=True)
class ResultTerms:
    """What a result means over time: valid through a date (KZ-8), a retake from a date (KZ-9)."""

    valid_through: datetime.date | None = None
    retake_from: datetime.date | None = None

    def to_json(self) -> dict[str, str]:
        terms: dict[str, str] = {}
        if self.valid_through is not None:
            terms["valid_through"] = self.valid_through.isoformat()
        if self.retake_from is not None:
            terms["retake_from"] = self.retake_from.isoformat()
        return terms


@dataclass(frozen=True, slots=True)
class AppealPolicy:
    """How results may be appealed and decided (UA-16), as numbers the workflow enforces."""

    rule: str
    timezone: str
    subjects: tuple[str, ...] = ("result", "non-admission")
    refused_subjects: Mapping[str, str] = field(default_factory=dict)
    """Subject → why it cannot be appealed (removal, UA-16)."""
    days_after_result: int = 0
    """0: on the day the result was shown; 1: by the next day; …"""
    days_after_refusal: int = 1
    decision_days: int = 1
    min_group_size: int = 1
    quorum: tuple[int, int] = (2, 3)
    """At least numerator/denominator of the group present (UA-2)."""


@dataclass(frozen=True, slots=True)
class DocumentKind:
    """A document a scheme produces: an id for files and commands, and its printed name."""

    kind: str
    title: str
    issued_on_close: tuple[str, ...] = ()
    """Sitting states that issue it at once when a sitting closes (``terminated`` → act)."""


class Scheme(ABC):
    """A scoring scheme. Subclass it in a plugin and register an instance."""

    name: ClassVar[str]
    title: ClassVar[str] = ""
    shows_result_to_candidate: ClassVar[bool] = True
    result_signers: ClassVar[tuple[str, ...]] = ()
    """Who signs a part result, in order: ``("candidate", "member")`` for UA-9."""
    lost_time_policy: ClassVar[str] = "proctor"
    """Time a candidate lost to a disconnect: ``"proctor"`` shows it and a proctor gives it back
    with one action; ``"automatic"`` gives it back as extra time the moment they reconnect."""

    def part_specs(self) -> Sequence[PartSpec]:
        """The parts the rules expect; an exam is checked against them (`check_exam`)."""
        return ()

    def check_exam(self, exam: Exam) -> list[str]:
        """How `exam` departs from `part_specs`: missing parts and wrong numbers, in words."""
        found: list[str] = []
        parts = {part.id: part for part in exam.parts}
        for spec in self.part_specs():
            part = parts.get(spec.id)
            if part is None:
                found.append(f"the scheme needs a part {spec.id!r}; the exam has none")
            else:
                found.extend(spec.problems(part))
        return found

    @abstractmethod
    def score_part(self, exam: Exam, part: Part, matrix: ResponseMatrix) -> list[PartResult]:
        """One result per row of `matrix`, in the same order."""

    def annulled(self, exam: Exam, part: Part, candidate_id: str, reason: str) -> PartResult:
        """The result of a terminated sitting: kept for audit, never counted (KZ-5)."""
        return PartResult(
            candidate_id, part.id, 0.0, float(part.blueprint.total), Outcome.ANNULLED, (reason,)
        )

    def absent(self, exam: Exam, part: Part, candidate_id: str, reason: str) -> PartResult:
        """The result of a no-show: nothing to score, and final."""
        return PartResult(
            candidate_id, part.id, 0.0, float(part.blueprint.total), Outcome.ABSENT, (reason,)
        )

    def combine(
        self, exam: Exam, results: Mapping[str, Mapping[str, PartResult]]
    ) -> list[ExamResult]:
        """Each candidate's part results → one exam result, in the order of `results`.

        The default adds scores up; the outcome is the worst of the parts' (annulled, absent,
        incomplete, fail, then pass or scored).
        """
        combined = []
        part_ids = [part.id for part in exam.parts]
        maximum = float(sum(part.blueprint.total for part in exam.parts))
        for candidate_id, by_part in results.items():
            present = [by_part[p] for p in part_ids if p in by_part]
            outcomes = {result.outcome for result in present}
            if len(present) < len(part_ids):
                outcomes.add(Outcome.INCOMPLETE)
            outcome = next(
                (o for o in _WORST_FIRST if o in outcomes),
                Outcome.PASS if outcomes == {Outcome.PASS} else Outcome.SCORED,
            )
            combined.append(
                ExamResult(
                    candidate_id,
                    float(sum(result.score for result in present)),
                    maximum,
                    outcome,
                    {result.part_id: result.score for result in present},
                    tuple(reason for result in present for reason in result.reasons),
                )
            )
        return combined

    def rank(
        self, exam: Exam, results: Sequence[ExamResult], candidates: Mapping[str, Candidate]
    ) -> list[RatingList]:
        """Rating lists; the default scheme ranks nobody."""
        return []

    def result_terms(self, exam: Exam, result: PartResult, closed_at: float) -> ResultTerms:
        """How long `result` stays valid and when a retake is allowed; by default, no terms."""
        return ResultTerms()

    def admit(
        self,
        exam: Exam,
        candidate: Candidate,
        part_id: str | None,
        history: Sequence[PastSitting],
        now: float,
    ) -> AdmissionDecision:
        """May `candidate` sit (`part_id`, or the exam at all when None) at `now`?"""
        return ADMITTED

    def appeal_policy(self, exam: Exam) -> AppealPolicy | None:
        """How results are appealed; None when the rules provide no appeal."""
        return None

    def document_kinds(self, exam: Exam) -> Sequence[DocumentKind]:
        """The documents this scheme produces for `exam`."""
        return ()

    def build_documents(self, exam: Exam, kind: str, book: ResultsBook) -> list[Document]:
        """Every document of `kind` the records in `book` call for (one per office, act, …)."""
        return []


_WORST_FIRST = (Outcome.ANNULLED, Outcome.ABSENT, Outcome.INCOMPLETE, Outcome.FAIL)


def is_number(value: object) -> bool:
    """A real, finite number (not a bool, not NaN): what scores must be."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
