"""Admission checks: may this person sit now, given their earlier sittings (KZ-9, UA-7)?

A person is their identity document (the IIN, the passport), so a second registration under
another candidate id does not escape the rules; without a document, their candidate id. Their
final sittings under the same scheme are handed to the scheme's `admit`; a refusal is recorded
(journal and table: it is the non-admission notice an appeal runs from, UA-16) and raised as
`AdmissionRefused`, whose message says why and, when the refusal ends, from which day.
An upheld appeal against a non-admission lets the candidate in.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection

from engine import records
from engine.exceptions import AdmissionRefused
from engine.model import Candidate, Exam
from engine.plugins import SchemeRegistry
from engine.schemes import AdmissionDecision, Outcome, PastSitting


def past_sittings(
    connection: sqlite3.Connection,
    exam: Exam,
    candidate: Candidate,
    *,
    same_scheme_exams: Collection[str] = (),
    excluding: str = "",
) -> list[PastSitting]:
    """The person's final sittings in this exam, in `same_scheme_exams`, or in any exam whose
    stored result names the same scheme; `excluding` is the sitting being entered."""
    found = []
    for exam_id, part_id, candidate_id, state, closed_at, body in records.load_history(
        connection, candidate.document, exam.id, candidate.id
    ):
        if f"{exam_id}/{candidate_id}/{part_id}" == excluding:
            continue
        stored = json.loads(body) if body else {}
        if not (
            exam_id == exam.id
            or exam_id in same_scheme_exams
            or stored.get("scheme") == exam.scheme
        ):
            continue
        try:
            outcome = Outcome(stored["outcome"]) if "outcome" in stored else None
        except ValueError:
            outcome = None
        found.append(
            PastSitting(
                exam_id, part_id, candidate_id, state, closed_at, outcome, exam_id == exam.id
            )
        )
    return found


async def check_admission(
    store: records.RecordStore,
    registry: SchemeRegistry,
    exam: Exam,
    candidate: Candidate,
    now: float,
    *,
    part_id: str | None = None,
    same_scheme_exams: Collection[str] = (),
) -> AdmissionDecision:
    """Return the admission if granted; otherwise record the refusal and raise it.

    `part_id` None asks about the exam as a whole (at sign-in); with a part, the sitting being
    entered is left out of the history.
    """
    entering = f"{exam.id}/{candidate.id}/{part_id}" if part_id else ""

    def read(connection: sqlite3.Connection) -> tuple[list[PastSitting], bool]:
        records.ensure_schema(connection)
        history = past_sittings(
            connection, exam, candidate, same_scheme_exams=same_scheme_exams, excluding=entering
        )
        return history, _appeal_lets_in(connection, exam.id, candidate.id)

    history, appealed = await store.run(read)
    decision = registry.for_exam(exam).admit(exam, candidate, part_id, history, now)
    if decision.admitted or appealed:
        return decision if decision.admitted else AdmissionDecision(True)

    def record(connection: sqlite3.Connection) -> None:
        records.insert_refusal(
            connection, store, exam.id, candidate.id, part_id, now, decision.rule, decision.reason
        )

    await store.run(record)
    raise AdmissionRefused(
        f"not admitted ({decision.rule}): {decision.reason}",
        rule=decision.rule,
        allowed_from=decision.allowed_from.isoformat() if decision.allowed_from else None,
    )


def _appeal_lets_in(connection: sqlite3.Connection, exam_id: str, candidate_id: str) -> bool:
    """True when the latest non-admission was overturned by an upheld appeal (UA-16).

    Called after `ensure_schema`, in the same job."""
    refusal = records.last_refusal(connection, exam_id, candidate_id, ensured=True)
    if refusal is None:
        return False
    return any(
        appeal.subject == "non-admission"
        and appeal.status == "upheld"
        and appeal.candidate_id == candidate_id
        and appeal.filed_at >= refusal[0]
        for appeal in records.load_appeals(connection, exam_id)
    )
