"""Appeals as a workflow (UA-16): filed by the candidate personally and on time, decided by the
working group with recorded votes and quorum, a changed score written through with its audit.

The numbers come from the scheme's `AppealPolicy`; the checks are pure functions
(`filing_deadline`, `decision_deadline`, `tally`) so each boundary is testable on its own, and
`file_appeal` / `decide_appeal` apply them to the stored records through the store's writer.
A refused filing is journaled too: the log shows that someone tried, when, and which rule said no.
"""

from __future__ import annotations

import datetime
import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from engine import records
from engine.book import VOTES, AppealRecord, GroupMember
from engine.dates import end_of_day, local_date, local_text, zone
from engine.exceptions import AppealRefused, RequestError
from engine.model import Exam
from engine.plugins import SchemeRegistry
from engine.results import part_result
from engine.schemes import AppealPolicy, Outcome, is_number

RESULT = "result"
NON_ADMISSION = "non-admission"
REMOVAL = "removal"


def filing_deadline(policy: AppealPolicy, subject: str, noticed_at: float) -> float:
    """The first instant an appeal is late: the end of the allowed local day (UA-16, 8.4)."""
    days = policy.days_after_result if subject == RESULT else policy.days_after_refusal
    tz = zone(policy.timezone)
    return end_of_day(local_date(noticed_at, tz) + datetime.timedelta(days=days), tz)


def decision_deadline(policy: AppealPolicy, filed_at: float) -> float:
    """The first instant a decision is late: after the next local day (UA-16, 8.5)."""
    tz = zone(policy.timezone)
    day = local_date(filed_at, tz) + datetime.timedelta(days=policy.decision_days)
    return end_of_day(day, tz)


@dataclass(frozen=True, slots=True)
class Tally:
    """A group decision's arithmetic: quorum over the group, majority over those present."""

    group_size: int
    present: int
    quorum_needed: int
    uphold: int
    reject: int
    abstain: int

    @property
    def has_quorum(self) -> bool:
        return self.present >= self.quorum_needed

    @property
    def upheld(self) -> bool:
        """A simple majority of the members present voted to uphold (UA-2)."""
        return 2 * self.uphold > self.present


def tally(
    policy: AppealPolicy,
    group: Sequence[GroupMember],
    present: Sequence[str],
    votes: Mapping[str, str],
) -> Tally:
    """Check who was present and how they voted; `RequestError` names what is wrong."""
    members = {member.id for member in group}
    if len(members) < policy.min_group_size:
        raise RequestError(
            f"the working group has {len(members)} members; at least {policy.min_group_size} "
            f"are required before it can decide ({policy.rule}, UA-2)",
            code="group_too_small",
        )
    strangers = sorted(set(present) - members)
    if strangers:
        raise RequestError(
            f"not members of the working group: {', '.join(strangers)}", code="not_a_member"
        )
    if len(set(present)) != len(present):
        raise RequestError("a member is listed as present twice", code="bad_votes")
    if set(votes) != set(present):
        missing = sorted(set(present) - set(votes))
        absent = sorted(set(votes) - set(present))
        problems = [f"no vote from {missing}"] if missing else []
        problems += [f"votes from members not present {absent}"] if absent else []
        raise RequestError(
            f"every member present votes, and only they: {'; '.join(problems)}", code="bad_votes"
        )
    unknown = sorted({vote for vote in votes.values() if vote not in VOTES})
    if unknown:
        raise RequestError(
            f"votes must be one of {', '.join(VOTES)}, not {unknown}", code="bad_votes"
        )
    numerator, denominator = policy.quorum
    needed = -(-len(members) * numerator // denominator)
    counts = {choice: sum(1 for vote in votes.values() if vote == choice) for choice in VOTES}
    return Tally(
        len(members), len(present), needed, counts["uphold"], counts["reject"], counts["abstain"]
    )


def appeal_policy(registry: SchemeRegistry, exam: Exam) -> AppealPolicy:
    """The scheme's rules for the working group's decisions (appeals, UA-16; ratings, UA-14)."""
    scheme = registry.for_exam(exam)
    policy = scheme.appeal_policy(exam)
    if policy is None:
        raise AppealRefused(
            f"the rules of scheme {scheme.name!r} provide no appeal", rule=scheme.name
        )
    return policy


async def file_appeal(
    store: records.RecordStore,
    registry: SchemeRegistry,
    exam: Exam,
    *,
    candidate_id: str,
    filed_by: str,
    subject: str,
    grounds: str,
    now: float,
    part_id: str | None = None,
) -> AppealRecord:
    """Accept an appeal for consideration, or raise `AppealRefused` citing the rule (journaled)."""
    policy = appeal_policy(registry, exam)

    def job(connection: sqlite3.Connection) -> AppealRecord | AppealRefused:
        records.ensure_schema(connection)
        refusal, noticed_at = _check_filing(
            connection, exam, policy, candidate_id, filed_by, subject, grounds, part_id, now
        )
        if refusal is not None:
            store.append_event(
                connection,
                _sitting_id(exam, candidate_id, part_id),
                "appeal-refused",
                now,
                {"by": filed_by, "subject": subject, "rule": refusal.rule, "reason": str(refusal)},
            )
            return refusal
        assert noticed_at is not None
        appeal = AppealRecord(
            number=0,
            candidate_id=candidate_id,
            part_id=part_id if subject == RESULT else None,
            subject=subject,
            grounds=grounds.strip(),
            filed_by=filed_by,
            filed_at=now,
            decide_by=decision_deadline(policy, now),
        )
        number = records.insert_appeal(connection, store, exam.id, appeal)
        return replace(appeal, number=number)

    outcome = await store.run(job)
    if isinstance(outcome, AppealRefused):
        raise outcome
    return outcome


def _check_filing(
    connection: sqlite3.Connection,
    exam: Exam,
    policy: AppealPolicy,
    candidate_id: str,
    filed_by: str,
    subject: str,
    grounds: str,
    part_id: str | None,
    now: float,
) -> tuple[AppealRefused | None, float | None]:
    """Why this filing is not accepted (None if it is), and when its subject was notified."""
    rule = policy.rule

    def refuse(reason: str) -> tuple[AppealRefused, None]:
        return AppealRefused(reason, rule=rule), None

    if filed_by != candidate_id:
        return refuse(
            f"an appeal is filed by the candidate personally; one from {filed_by!r} for "
            f"{candidate_id!r} is not accepted ({rule}, 8.4)"
        )
    if subject in policy.refused_subjects:
        return refuse(policy.refused_subjects[subject])
    if subject not in policy.subjects:
        return refuse(f"{subject!r} cannot be appealed; appealable: {', '.join(policy.subjects)}")
    if not grounds.strip():
        return refuse(f"an appeal must state its grounds ({rule}, 8.4)")
    if candidate_id not in records.load_candidates(connection, exam.id):
        return refuse(f"{candidate_id!r} is not a candidate of {exam.id}")
    tz = zone(policy.timezone)
    if subject == RESULT:
        if part_id is None:
            return refuse("say which test's result is appealed (the part)")
        row = connection.execute(
            "SELECT s.state, s.closed_at, r.body FROM sittings s "
            "LEFT JOIN results r ON r.sitting_id = s.id WHERE s.id = ?",
            (_sitting_id(exam, candidate_id, part_id),),
        ).fetchone()
        if row is None or row[1] is None or row[2] is None:
            return refuse(f"{candidate_id} has no result of the {part_id} test to appeal")
        state, noticed_at, body = row
        result = part_result(json.loads(body))
        if state == "terminated" or (result is not None and result.outcome is Outcome.ANNULLED):
            return refuse(policy.refused_subjects.get(REMOVAL, "a removal cannot be appealed"))
        what = f"the result shown on {local_text(noticed_at, tz)}"
    else:
        refusal = records.last_refusal(connection, exam.id, candidate_id)
        if refusal is None:
            return refuse(f"no notice of non-admission is recorded for {candidate_id}")
        noticed_at = refusal[0]
        what = f"the non-admission notice of {local_text(noticed_at, tz)}"
    deadline = filing_deadline(policy, subject, noticed_at)
    if now >= deadline:
        late = now - deadline
        return refuse(
            f"filed {local_text(now, tz)}, {_duration(late)} after the deadline for {what} "
            f"(accepted until {local_text(deadline - 60, tz)} inclusive); late appeals are not "
            f"accepted ({rule}, 8.4)"
        )
    open_appeals = [
        a
        for a in records.load_appeals(connection, exam.id)
        if a.candidate_id == candidate_id
        and a.subject == subject
        and a.part_id == (part_id if subject == RESULT else None)
        and a.status == "filed"
    ]
    if open_appeals:
        return refuse(f"appeal {open_appeals[0].number} on the same matter awaits its decision")
    return None, float(noticed_at)


async def decide_appeal(
    store: records.RecordStore,
    registry: SchemeRegistry,
    exam: Exam,
    number: int,
    *,
    present: Sequence[str],
    votes: Mapping[str, str],
    decision: str,
    now: float,
    new_score: float | None = None,
    candidate_present: bool = False,
) -> AppealRecord:
    """Record the working group's decision; an upheld score change goes into the results."""
    policy = appeal_policy(registry, exam)
    if new_score is not None and not is_number(new_score):
        raise RequestError(f"the new score {new_score!r} is not a number", code="bad_score")

    def job(connection: sqlite3.Connection) -> AppealRecord:
        records.ensure_schema(connection)
        found = records.load_appeals(connection, exam.id, number)
        if not found:
            raise RequestError(f"{exam.id} has no appeal {number}", code="unknown_appeal")
        appeal = found[0]
        if appeal.status != "filed":
            raise RequestError(
                f"appeal {number} was already decided ({appeal.status})", code="decided"
            )
        counted = tally(policy, records.load_group(connection, exam.id), present, votes)
        if not counted.has_quorum:
            raise RequestError(
                f"no quorum: {counted.present} of {counted.group_size} members present, "
                f"{counted.quorum_needed} needed ({policy.rule}, UA-2)",
                code="no_quorum",
            )
        before = after = None
        if new_score is not None:
            before, after = _check_new_score(connection, exam, appeal, counted, new_score)
        decided = replace(
            appeal,
            status="upheld" if counted.upheld else "rejected",
            decided_at=now,
            present=tuple(present),
            votes=dict(votes),
            group_size=counted.group_size,
            quorum_needed=counted.quorum_needed,
            candidate_present=candidate_present,
            decision=decision.strip(),
            score_before=before["score"] if before else None,
            score_after=after["score"] if after else None,
        )
        records.record_decision(connection, store, exam.id, decided)
        if before is not None and after is not None and before["score"] != after["score"]:
            assert appeal.part_id is not None
            records.change_result(
                connection,
                store,
                _sitting_id(exam, appeal.candidate_id, appeal.part_id),
                after,
                f"appeal {number}",
                now,
            )
        return decided

    return await store.run(job)


def _check_new_score(
    connection: sqlite3.Connection,
    exam: Exam,
    appeal: AppealRecord,
    counted: Tally,
    new_score: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The result body before and after an upheld change of score (UA-16, 8.6)."""
    if appeal.subject != RESULT or appeal.part_id is None:
        raise RequestError("only an appeal against a result can change a score", code="bad_score")
    if not counted.upheld:
        raise RequestError(
            f"the appeal is not upheld ({counted.uphold} of {counted.present} for): "
            "the score cannot change",
            code="bad_score",
        )
    row = connection.execute(
        "SELECT body FROM results WHERE sitting_id = ?",
        (_sitting_id(exam, appeal.candidate_id, appeal.part_id),),
    ).fetchone()
    before: dict[str, Any] = json.loads(row[0])
    maximum = before.get("max_score", 0)
    if not 0 <= new_score <= maximum:
        raise RequestError(f"the new score {new_score} is outside 0..{maximum}", code="bad_score")
    details = dict(before.get("details", {}))
    details["appeal"] = {"number": appeal.number, "score_before": before.get("score")}
    return before, {**before, "score": float(new_score), "details": details}


def _sitting_id(exam: Exam, candidate_id: str, part_id: str | None) -> str:
    return f"{exam.id}/{candidate_id}/{part_id}" if part_id else ""


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
