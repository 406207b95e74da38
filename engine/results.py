"""Results after scoring: the stored record of a part result, and the exam's results book.

`result_record` is what the server stores when a sitting closes (the scheme's result plus its
validity and retake dates). `read_records` reads an exam's records, `assemble_book` turns them
into a `ResultsBook` (the scheme combines and ranks); `read_book` does both offline.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import records
from engine.book import (
    AppealRecord,
    GroupMember,
    RatingApproval,
    ResultsBook,
    ScoreChange,
    SignatureRecord,
    SittingRecord,
)
from engine.checked_scheme import CheckedScheme
from engine.exceptions import ConfigError
from engine.model import Bank, Candidate, Exam
from engine.plugins import SchemeRegistry
from engine.schemes import Outcome, PartResult

POSTS_SETTING = "posts"
"""``[exam.settings.posts]``: posts to fill per rating group, e.g. per local office (UA-17)."""


def result_record(
    registry: SchemeRegistry, exam: Exam, result: PartResult, closed_at: float | None
) -> dict[str, Any]:
    """The JSON stored for a closed sitting: the result, when it closed, and its terms."""
    record = result.to_json()
    record["scheme"] = exam.scheme
    if closed_at is not None:
        record["closed_at"] = closed_at
        record.update(registry.for_exam(exam).result_terms(exam, result, closed_at).to_json())
    return record


def part_result(body: Mapping[str, Any]) -> PartResult | None:
    """The result in a stored body, or None when scoring had failed (``{"error": …}``)."""
    if "error" in body:
        return None
    return PartResult.from_json(body)


def posts_of(exam: Exam, overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """Posts per rating group: the exam's ``settings.posts``, then `overrides` on top."""
    configured = exam.settings.get(POSTS_SETTING, {})
    if not isinstance(configured, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in configured.items()
    ):
        raise ConfigError(
            f"exam {exam.id!r}: settings.posts must map a group (office) to a whole number"
        )
    return {**configured, **(overrides or {})}


def tag_titles(exam: Exam, banks: Mapping[str, Bank]) -> dict[str, dict[str, dict[str, str]]]:
    """Part id → blueprint tag value → its title per language, from the part's bank."""
    titles: dict[str, dict[str, dict[str, str]]] = {}
    for part in exam.parts:
        bank = banks.get(part.bank_id)
        if bank is not None:
            declared = bank.tags.get(part.blueprint.dimension, {})
            titles[part.id] = {value: dict(title) for value, title in declared.items()}
    return titles


@dataclass(frozen=True)
class StoredRecords:
    """The raw records of one exam (or candidate), read in one go; no plugin code runs here."""

    candidates: dict[str, Candidate]
    sittings: dict[tuple[str, str], SittingRecord]
    bodies: dict[str, dict[str, Any]]
    signatures: dict[str, dict[str, SignatureRecord]]
    group: tuple[GroupMember, ...]
    appeals: tuple[AppealRecord, ...]
    changes: tuple[ScoreChange, ...]
    staff_names: dict[str, str]
    rating_approvals: dict[str, RatingApproval]


def read_records(
    connection: sqlite3.Connection, exam_id: str, candidate_id: str | None = None
) -> StoredRecords:
    """Read an exam's results records: quick enough to run inside a writer job."""
    candidates = records.load_candidates(connection, exam_id)
    if candidate_id is not None:
        candidates = {k: v for k, v in candidates.items() if k == candidate_id}
    sittings = records.load_sittings(connection, exam_id, candidate_id)
    sitting_ids = {sitting.sitting_id for sitting in sittings.values()}
    return StoredRecords(
        candidates=candidates,
        sittings=sittings,
        bodies=records.load_result_bodies(connection, exam_id, candidate_id),
        signatures=records.load_signatures(connection, exam_id, candidate_id),
        group=records.load_group(connection, exam_id),
        appeals=tuple(
            appeal
            for appeal in records.load_appeals(connection, exam_id)
            if candidate_id is None or appeal.candidate_id == candidate_id
        ),
        changes=tuple(
            change
            for change in records.load_changes(connection, exam_id)
            if change.sitting_id in sitting_ids
        ),
        staff_names=records.load_staff_names(connection, exam_id),
        rating_approvals=records.load_rating_approvals(connection, exam_id),
    )


def assemble_book(
    stored: StoredRecords,
    exam: Exam,
    scheme: CheckedScheme,
    *,
    now: float,
    banks: Mapping[str, Bank] | None = None,
    posts: Mapping[str, int] | None = None,
    rank: bool = True,
) -> ResultsBook:
    """The results book: stored results, no-shows as absent, combined and ranked by the scheme."""
    parts = {part.id: part for part in exam.parts}
    results: dict[tuple[str, str], PartResult] = {}
    terms: dict[tuple[str, str], dict[str, str]] = {}
    for key, sitting in stored.sittings.items():
        part = parts.get(sitting.part_id)
        if part is None:
            continue
        body = stored.bodies.get(sitting.sitting_id)
        result = None
        if body is not None:
            try:
                result = part_result(body)
            except ValueError as error:
                raise ConfigError(f"stored result of {sitting.sitting_id}: {error}") from None
        # How the sitting ended decides over a stored score: a no-show is absent and a
        # terminated sitting annulled, whatever was scored for their (empty) answers.
        if sitting.state == "no-show" and (result is None or result.outcome is not Outcome.ABSENT):
            result = scheme.absent(exam, part, sitting.candidate_id, "did not appear in time")
        if sitting.state == "terminated" and (
            result is None or result.outcome is not Outcome.ANNULLED
        ):
            reason = sitting.close_reason or "terminated"
            result = scheme.annulled(exam, part, sitting.candidate_id, reason)
        if result is None:
            continue
        results[key] = result
        if sitting.closed_at is not None:
            terms[key] = scheme.result_terms(exam, result, sitting.closed_at).to_json()
    by_candidate: dict[str, dict[str, PartResult]] = {who: {} for who, _ in stored.sittings}
    for (who, part_id), result in results.items():
        by_candidate[who][part_id] = result
    exam_results = scheme.combine(exam, dict(sorted(by_candidate.items())))
    ranked = [result for result in exam_results if result.candidate_id in stored.candidates]
    ratings = scheme.rank(exam, ranked, stored.candidates) if rank else []
    return ResultsBook(
        exam=exam,
        candidates=stored.candidates,
        sittings=stored.sittings,
        results=results,
        issued_at=now,
        exam_results=tuple(exam_results),
        ratings=tuple(ratings),
        signatures=stored.signatures,
        group=stored.group,
        appeals=stored.appeals,
        changes=stored.changes,
        terms=terms,
        tag_titles=tag_titles(exam, banks or {}),
        posts=posts_of(exam, posts),
        staff_names=stored.staff_names,
        rating_approvals=stored.rating_approvals,
    )


def read_book(
    data_dir: Path,
    exam: Exam,
    registry: SchemeRegistry,
    *,
    now: float,
    banks: Mapping[str, Bank] | None = None,
    candidate_id: str | None = None,
    posts: Mapping[str, int] | None = None,
) -> ResultsBook:
    """The exam's results book, read from a read-only connection (offline, beside a server)."""
    with records.read_only(data_dir) as connection:
        stored = read_records(connection, exam.id, candidate_id)
    return assemble_book(
        stored,
        exam,
        registry.for_exam(exam),
        now=now,
        banks=banks,
        posts=posts,
        rank=candidate_id is None,
    )
