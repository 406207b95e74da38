"""The state machine of one sitting: one candidate taking one part.

Sans-I/O: no await, no clock read, no socket. The I/O shell passes `now` (UTC epoch seconds) into
every call and gets back a `SittingEvent` to make durable and broadcast. An illegal call raises a
`CandidateError` subclass and changes nothing, so the shell can answer with the reason and carry on.

The clock lives here: deadline = start + limit + extra time granted + time spent paused.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, cast

from engine.exceptions import IllegalTransition, SequenceError, TooLate, UnknownItem
from engine.model import Form


class State(enum.StrEnum):
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked-in"
    RUNNING = "running"
    PAUSED = "paused"
    SUBMITTED = "submitted"
    EXPIRED = "expired"
    TERMINATED = "terminated"
    NO_SHOW = "no-show"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({State.SUBMITTED, State.EXPIRED, State.TERMINATED, State.NO_SHOW})


class Trigger(enum.StrEnum):
    CONFIRM_IDENTITY = "confirm-identity"
    CHECK_IN = "check-in"
    START = "start"
    ANSWER = "answer"
    PAUSE = "pause"
    RESUME = "resume"
    GRANT_TIME = "grant-time"
    SUBMIT = "submit"
    EXPIRE = "expire"
    TERMINATE = "terminate"
    MARK_NO_SHOW = "no-show"


S, T = State, Trigger
TRANSITIONS: Mapping[tuple[State, Trigger], State] = {
    (S.SCHEDULED, T.CONFIRM_IDENTITY): S.SCHEDULED,
    (S.CHECKED_IN, T.CONFIRM_IDENTITY): S.CHECKED_IN,
    (S.SCHEDULED, T.CHECK_IN): S.CHECKED_IN,
    (S.SCHEDULED, T.MARK_NO_SHOW): S.NO_SHOW,
    (S.SCHEDULED, T.TERMINATE): S.TERMINATED,
    (S.CHECKED_IN, T.START): S.RUNNING,
    (S.CHECKED_IN, T.GRANT_TIME): S.CHECKED_IN,
    (S.CHECKED_IN, T.MARK_NO_SHOW): S.NO_SHOW,
    (S.CHECKED_IN, T.TERMINATE): S.TERMINATED,
    (S.RUNNING, T.ANSWER): S.RUNNING,
    (S.RUNNING, T.PAUSE): S.PAUSED,
    (S.RUNNING, T.GRANT_TIME): S.RUNNING,
    (S.RUNNING, T.SUBMIT): S.SUBMITTED,
    (S.RUNNING, T.EXPIRE): S.EXPIRED,
    (S.RUNNING, T.TERMINATE): S.TERMINATED,
    (S.PAUSED, T.RESUME): S.RUNNING,
    (S.PAUSED, T.GRANT_TIME): S.PAUSED,
    (S.PAUSED, T.TERMINATE): S.TERMINATED,
}
"""Every legal move; anything not listed is refused (the h11 way)."""
del S, T


@dataclass(frozen=True, slots=True)
class AnswerRecord:
    """The latest answer to one item. `choice` is the original option index, None when cleared."""

    item_id: str
    choice: int | None
    flagged: bool
    seq: int
    at: float


@dataclass(frozen=True, slots=True)
class SittingEvent:
    """Something that happened to a sitting: a journal entry once it is durable."""

    sitting_id: str
    kind: str
    at: float
    data: Mapping[str, Any] = field(default_factory=dict)
    answer: AnswerRecord | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the store keeps of a sitting besides its answers and journal."""

    sitting_id: str
    exam_id: str
    candidate_id: str
    part_id: str
    time_limit_s: float
    state: State = State.SCHEDULED
    language: str | None = None
    checked_in_at: float | None = None
    started_at: float | None = None
    extra_s: float = 0.0
    paused_total_s: float = 0.0
    paused_at: float | None = None
    closed_at: float | None = None
    close_reason: str = ""
    last_seq: int = 0
    identity_by: str | None = None
    identity_at: float | None = None
    disconnected_at: float | None = None
    lost_s: float = 0.0
    """Time lost to disconnects while running and not yet given back."""


_SNAPSHOT_FIELDS = tuple(f.name for f in fields(Snapshot))


def _copier_with_last_seq() -> Callable[[Snapshot, int], Snapshot]:
    """`replace(snapshot, last_seq=seq)` without re-running `__init__`, paid on every answer.

    Written out field by field from `fields(Snapshot)` (as dataclasses writes `__init__`), each
    through its slot's own setter, which a frozen class leaves working: 1.5 µs where `replace`
    took 7–10 and `object.__setattr__` by name 2.5.
    """
    lines = ["def with_last_seq(snapshot, seq):", "    copy = new(Snapshot)"]
    namespace: dict[str, Any] = {"new": object.__new__, "Snapshot": Snapshot}
    for name in _SNAPSHOT_FIELDS:
        value = "seq" if name == "last_seq" else f"snapshot.{name}"
        lines.append(f"    set_{name}(copy, {value})")
        namespace[f"set_{name}"] = vars(Snapshot)[name].__set__
    lines.append("    return copy")
    exec("\n".join(lines), namespace)
    return cast(Callable[[Snapshot, int], Snapshot], namespace["with_last_seq"])


_with_last_seq = _copier_with_last_seq()


def sitting_id_for(exam_id: str, candidate_id: str, part_id: str) -> str:
    return f"{exam_id}/{candidate_id}/{part_id}"


ID_END = chr(ord("/") + 1)
"""Just past the separator: ``exam/candidate/`` up to (not with) ``exam/candidate`` + this."""


def sitting_range(exam_id: str, candidate_id: str | None = None) -> tuple[str, str]:
    """Bounds of the sitting ids (``exam/candidate/part``) of an exam or one candidate in it.

    A range over the primary key, so one candidate's records are found without a scan.
    """
    prefix = f"{exam_id}/" if candidate_id is None else f"{exam_id}/{candidate_id}/"
    return prefix, prefix[:-1] + ID_END


class Sitting:
    """One sitting's state, clock and answers; every change returns the event that records it."""

    def __init__(
        self,
        snapshot: Snapshot,
        form: Form,
        languages: Iterable[str],
        answers: Iterable[AnswerRecord] = (),
        *,
        requires_identity: bool = False,
    ) -> None:
        self.snapshot = snapshot
        self.requires_identity = requires_identity
        self.form = form
        self.languages = tuple(languages)
        history = sorted(answers, key=lambda answer: answer.seq)
        self.answers: dict[str, AnswerRecord] = {answer.item_id: answer for answer in history}
        self._answers_by_seq: dict[int, AnswerRecord] = {answer.seq: answer for answer in history}
        self._positions = {item.item_id: i for i, item in enumerate(form.items)}
        self._answered = sum(1 for answer in self.answers.values() if answer.choice is not None)

    # -- reading -----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.snapshot.sitting_id

    @property
    def state(self) -> State:
        return self.snapshot.state

    @property
    def last_seq(self) -> int:
        return self.snapshot.last_seq

    def deadline(self) -> float | None:
        """When the sitting expires, as things stand; None before start and while paused."""
        snap = self.snapshot
        if snap.started_at is None or snap.paused_at is not None or snap.state.is_final:
            return None
        return snap.started_at + snap.time_limit_s + snap.extra_s + snap.paused_total_s

    def remaining(self, now: float) -> float:
        """Seconds left on the candidate's clock (frozen while paused, full before start)."""
        snap = self.snapshot
        budget = snap.time_limit_s + snap.extra_s
        if snap.started_at is None:
            return budget
        if snap.state.is_final:
            return 0.0
        until = snap.paused_at if snap.paused_at is not None else now
        used = until - snap.started_at - snap.paused_total_s
        return max(0.0, budget - used)

    def is_overdue(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and now >= deadline

    # -- moving ------------------------------------------------------------------------------

    def _move(self, trigger: Trigger) -> State:
        target = TRANSITIONS.get((self.snapshot.state, trigger))
        if target is None:
            raise IllegalTransition(
                f"cannot {trigger.value} a sitting that is {self.snapshot.state.value}"
            )
        return target

    def _event(self, kind: str, now: float, **data: Any) -> SittingEvent:
        return SittingEvent(self.id, kind, now, data)

    def confirm_identity(self, now: float, *, by: str, document: str) -> SittingEvent:
        """A proctor saw the identity document (KZ-3, UA-6); recorded with who and when."""
        target = self._move(Trigger.CONFIRM_IDENTITY)
        self.snapshot = replace(self.snapshot, state=target, identity_by=by, identity_at=now)
        return self._event("identity-confirmed", now, by=by, document=document)

    def check_in(self, now: float, *, by: str) -> SittingEvent:
        target = self._move(Trigger.CHECK_IN)
        if self.requires_identity and self.snapshot.identity_at is None:
            raise IllegalTransition(
                "the candidate's identity must be confirmed before admission",
                code="identity_required",
            )
        self.snapshot = replace(self.snapshot, state=target, checked_in_at=now)
        return self._event("checked-in", now, by=by)

    # -- connection accounting (not state moves: they never refuse) ---------------------------

    def disconnected(self, now: float) -> SittingEvent:
        """The candidate's connection dropped; while running, the lost time starts counting."""
        if self.snapshot.state is State.RUNNING and self.snapshot.disconnected_at is None:
            self.snapshot = replace(self.snapshot, disconnected_at=now)
        return self._event("disconnected", now, state=self.snapshot.state.value)

    def reconnected(self, now: float) -> SittingEvent:
        """Back again: the time away while running is added to what the proctor may give back."""
        away_since = self.snapshot.disconnected_at
        lost = 0.0
        if away_since is not None:
            deadline = self.deadline()
            until = now if deadline is None else min(now, deadline)
            lost = max(0.0, until - away_since)
        self.snapshot = replace(
            self.snapshot, disconnected_at=None, lost_s=self.snapshot.lost_s + lost
        )
        return self._event("reconnected", now, lost_s=round(lost, 3))

    def return_lost_time(self, now: float, *, by: str) -> SittingEvent:
        """Give back, as extra time, the time measured lost to disconnects."""
        lost = self.snapshot.lost_s
        if lost <= 0:
            raise IllegalTransition("no time lost to disconnects is waiting to be given back")
        event = self.grant_time(now, seconds=lost, by=by, reason="time lost to disconnects")
        self.snapshot = replace(self.snapshot, lost_s=0.0)
        return replace(event, kind="lost-time-returned")

    def start(self, now: float, *, language: str) -> SittingEvent:
        target = self._move(Trigger.START)
        if language not in self.languages:
            raise IllegalTransition(
                f"language {language!r} is not offered; choose one of {', '.join(self.languages)}"
            )
        self.snapshot = replace(self.snapshot, state=target, started_at=now, language=language)
        return self._event("started", now, language=language, deadline=self.deadline())

    def answer(
        self, *, seq: int, item_id: str, shown: int | None, flagged: bool, now: float
    ) -> SittingEvent | None:
        """Record an answer; returns None for an exact retry of an answer already taken.

        `shown` is the option's position as the candidate saw it; the record keeps the original
        index so scoring never needs the form.
        """
        position = self._positions.get(item_id)
        if position is None:
            raise UnknownItem(f"item {item_id!r} is not in this form")
        order = self.form.items[position].option_order
        if shown is not None and not 0 <= shown < len(order):
            raise UnknownItem(f"item {item_id!r} has options 0..{len(order) - 1}, not {shown}")
        choice = None if shown is None else order[shown]
        if seq <= self.snapshot.last_seq:
            previous = self._answers_by_seq.get(seq)
            if previous is not None and (previous.item_id, previous.choice, previous.flagged) == (
                item_id,
                choice,
                flagged,
            ):
                return None
            raise SequenceError(
                f"answer {seq} was already used for different content; next is "
                f"{self.snapshot.last_seq + 1}",
                code="seq_replayed",
            )
        self._move(Trigger.ANSWER)
        if self.is_overdue(now):
            deadline = self.deadline()
            assert deadline is not None
            raise TooLate(f"answer {seq} arrived {now - deadline:.3f} s after the deadline")
        if seq != self.snapshot.last_seq + 1:
            raise SequenceError(
                f"answer {seq} skips ahead; the next expected is {self.snapshot.last_seq + 1}",
                code="seq_gap",
            )
        record = AnswerRecord(item_id, choice, flagged, seq, now)
        replaced = self.answers.get(item_id)
        was_answered = replaced is not None and replaced.choice is not None
        self._answered += (choice is not None) - was_answered
        self.answers[item_id] = record
        self._answers_by_seq[seq] = record
        self.snapshot = _with_last_seq(self.snapshot, seq)
        return SittingEvent(
            self.id,
            "answer",
            now,
            {"seq": seq, "item": item_id, "choice": choice, "flag": flagged},
            answer=record,
        )

    def pause(self, now: float, *, by: str, reason: str) -> SittingEvent:
        self.snapshot = replace(self.snapshot, state=self._move(Trigger.PAUSE), paused_at=now)
        return self._event("paused", now, by=by, reason=reason)

    def resume(self, now: float, *, by: str) -> SittingEvent:
        target = self._move(Trigger.RESUME)
        assert self.snapshot.paused_at is not None
        paused_for = max(0.0, now - self.snapshot.paused_at)
        self.snapshot = replace(
            self.snapshot,
            state=target,
            paused_at=None,
            paused_total_s=self.snapshot.paused_total_s + paused_for,
        )
        return self._event("resumed", now, by=by, paused_s=paused_for, deadline=self.deadline())

    def grant_time(self, now: float, *, seconds: float, by: str, reason: str) -> SittingEvent:
        if not 0 < seconds <= 24 * 3600:
            raise IllegalTransition(f"extra time must be between 0 and 24 h, not {seconds} s")
        target = self._move(Trigger.GRANT_TIME)
        if self.is_overdue(now):
            raise TooLate("the deadline has passed; extra time can no longer be granted")
        self.snapshot = replace(
            self.snapshot, state=target, extra_s=self.snapshot.extra_s + seconds
        )
        return self._event(
            "time-granted", now, seconds=seconds, by=by, reason=reason, deadline=self.deadline()
        )

    def submit(self, now: float) -> SittingEvent:
        target = self._move(Trigger.SUBMIT)
        if self.is_overdue(now):
            raise TooLate("the deadline passed before the submission arrived")
        return self._close(target, now, "submitted by the candidate", "submitted")

    def expire(self, now: float) -> SittingEvent:
        """Close at the deadline; `now` may be later (server was down), the record says when."""
        target = self._move(Trigger.EXPIRE)
        deadline = self.deadline()
        assert deadline is not None
        late_by = max(0.0, now - deadline)
        event = self._close(target, deadline, "time is up", "expired")
        return replace(event, data={**event.data, "noticed_late_s": round(late_by, 3)})

    def terminate(self, now: float, *, by: str, reason: str) -> SittingEvent:
        target = self._move(Trigger.TERMINATE)
        return self._close(target, now, reason, "terminated", by=by)

    def mark_no_show(self, now: float, *, by: str) -> SittingEvent:
        target = self._move(Trigger.MARK_NO_SHOW)
        return self._close(target, now, "did not appear in time", "no-show", by=by)

    def _close(self, target: State, at: float, reason: str, kind: str, **data: Any) -> SittingEvent:
        snap = self.snapshot
        paused_total = snap.paused_total_s
        if snap.paused_at is not None:
            paused_total += max(0.0, at - snap.paused_at)
        self.snapshot = replace(
            snap,
            state=target,
            closed_at=at,
            close_reason=reason,
            paused_at=None,
            paused_total_s=paused_total,
        )
        return self._event(kind, at, reason=reason, answered=self._answered, **data)

    def answered(self) -> list[AnswerRecord]:
        return [answer for answer in self.answers.values() if answer.choice is not None]

    @property
    def answered_count(self) -> int:
        """How many items have a choice: kept as answers arrive, read on every tile update."""
        return self._answered
