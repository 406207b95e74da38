"""The results book of one exam: everything recorded about its results, as plain data.

Schemes build their documents and ratings from a book; `engine.results` fills one from the data
directory (the whole exam, or one candidate's records to issue their papers). Keeping it plain
data means a scheme's documents can be tested without a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.model import Candidate, Exam
from engine.schemes import ExamResult, PartResult, RatingList

GROUP_ROLES = ("head", "deputy", "secretary", "member")
"""The working group's roles (UA-2), in the order documents list them."""

VOTES = ("uphold", "reject", "abstain")


@dataclass(frozen=True, slots=True)
class SittingRecord:
    """How a sitting ended; `closed_by` is the proctor or member who terminated or marked it."""

    sitting_id: str
    candidate_id: str
    part_id: str
    state: str
    language: str | None = None
    started_at: float | None = None
    closed_at: float | None = None
    close_reason: str = ""
    closed_by: str = ""


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    """A recorded, sealed signature of a part result (UA-9): the candidate's or a member's."""

    sitting_id: str
    role: str
    signer: str
    at: float
    key_id: str
    signature: str
    """The seal's signature, base64: what a printed sheet quotes."""
    statement: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupMember:
    """A member of the working group (UA-2). Demo members are fictional."""

    id: str
    full_name: str
    role: str


@dataclass(frozen=True, slots=True)
class RatingApproval:
    """The working group's vote on one rating list (UA-14), and what the list held then."""

    exam_id: str
    group: str
    at: float
    present: tuple[str, ...]
    votes: Mapping[str, str]
    """Member id → `VOTES` ("uphold" approves)."""
    group_size: int
    quorum_needed: int
    approved: bool
    list_sha256: str
    """`engine.rating_approval.rating_digest` of the list voted on."""
    protocol: str
    """The meeting's protocol reference, as the secretary gives it."""


@dataclass(frozen=True, slots=True)
class AppealRecord:
    """An appeal (UA-16) as filed and, once decided, as decided."""

    number: int
    candidate_id: str
    part_id: str | None
    subject: str
    grounds: str
    filed_by: str
    filed_at: float
    decide_by: float
    status: str = "filed"
    decided_at: float | None = None
    present: tuple[str, ...] = ()
    votes: Mapping[str, str] = field(default_factory=dict)
    group_size: int = 0
    quorum_needed: int = 0
    candidate_present: bool = False
    decision: str = ""
    score_before: float | None = None
    score_after: float | None = None


@dataclass(frozen=True, slots=True)
class ScoreChange:
    """A part score changed after the fact (appeal, re-scoring): the audit trail of a sheet."""

    sitting_id: str
    at: float
    cause: str
    score_before: float
    score_after: float


@dataclass(frozen=True)
class ResultsBook:
    """One exam's results and the records around them, at `issued_at`."""

    exam: Exam
    candidates: Mapping[str, Candidate]
    sittings: Mapping[tuple[str, str], SittingRecord]
    """By (candidate id, part id)."""
    results: Mapping[tuple[str, str], PartResult]
    """The effective result by (candidate id, part id), after any score change."""
    issued_at: float
    exam_results: tuple[ExamResult, ...] = ()
    ratings: tuple[RatingList, ...] = ()
    signatures: Mapping[str, Mapping[str, SignatureRecord]] = field(default_factory=dict)
    """By sitting id, then role."""
    group: tuple[GroupMember, ...] = ()
    appeals: tuple[AppealRecord, ...] = ()
    changes: tuple[ScoreChange, ...] = ()
    terms: Mapping[tuple[str, str], Mapping[str, str]] = field(default_factory=dict)
    """A result's `ResultTerms.to_json()` by (candidate id, part id)."""
    tag_titles: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    """Part id → tag value → language → title (the act or category names of its bank)."""
    posts: Mapping[str, int] = field(default_factory=dict)
    """Posts to fill per rating group (UA-17: per local office)."""
    staff_names: Mapping[str, str] = field(default_factory=dict)
    """Proctors' names by login: who terminated or marked a sitting."""
    rating_approvals: Mapping[str, RatingApproval] = field(default_factory=dict)
    """The latest vote on each rating group's list (UA-14)."""

    def tag_title(self, part_id: str, value: str, language: str) -> str:
        titles = self.tag_titles.get(part_id, {}).get(value, {})
        return titles.get(language) or next(iter(titles.values()), value)

    def candidate(self, candidate_id: str) -> Candidate:
        """The candidate, or a stand-in named by id when the roster no longer lists them."""
        found = self.candidates.get(candidate_id)
        return found or Candidate(candidate_id, self.exam.id, candidate_id, "")

    def member_name(self, member_id: str) -> str:
        """A working-group member's or proctor's name; the id itself when unknown."""
        for member in self.group:
            if member.id == member_id:
                return member.full_name
        return self.staff_names.get(member_id, member_id)

    def changes_of(self, sitting_id: str) -> list[ScoreChange]:
        return [change for change in self.changes if change.sitting_id == sitting_id]
