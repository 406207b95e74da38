"""Re-scoring: score responses again — the stored ones after a key is corrected, or responses
from elsewhere in the documented format (docs/scoring-formats.md) — and show what changed.

Nothing is written until `apply` is called (``examhall score --confirm``); then each changed
result is written through to the results with the old and new score in the journal. A result an
appeal decision changed is held: re-scoring reports it and leaves it to the working group.

Input, one JSON object per line (``.jsonl``)::

    {"candidate": "c1", "part": "main", "items": ["i1", "i2"], "answers": {"i1": 2, "i2": null},
     "state": "submitted"}

``items`` is the form (default: the keys of ``answers``); an answer is the bank's original,
0-based option index or null; ``state`` is ``submitted`` (default), ``expired`` or ``terminated``
(annulled, with an optional ``reason``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from engine import records
from engine.book import ScoreChange
from engine.exceptions import BankError, ConfigError, Problem
from engine.forms import assemble_forms
from engine.model import Bank, Exam, Form, FormItem
from engine.plugins import SchemeRegistry
from engine.results import part_result, result_record
from engine.schemes import PartResult
from engine.scoring import ResponseMatrix, build_matrix
from engine.store.sqlite import SQLiteStore, read_exam_secret

SCORED_STATES = ("submitted", "expired")
RESPONSE_STATES = (*SCORED_STATES, "terminated")


@dataclass(frozen=True, slots=True)
class Responses:
    """One sitting's responses, wherever they come from."""

    candidate_id: str
    part_id: str
    items: tuple[str, ...]
    """The candidate's form, in order."""
    answers: Mapping[str, int | None]
    state: str = "submitted"
    reason: str = ""
    closed_at: float | None = None


def stored_responses(
    data_dir: Path, exam: Exam, banks: Mapping[str, Bank], part_ids: Sequence[str] = ()
) -> list[Responses]:
    """The closed sittings' responses, their forms regenerated from the exam's secret."""
    secret = read_exam_secret(data_dir / SQLiteStore.FILE_NAME, exam.id)
    wanted = set(part_ids) or {part.id for part in exam.parts}
    unknown = wanted - {part.id for part in exam.parts}
    if unknown:
        raise ConfigError(f"exam {exam.id!r} has no part {', '.join(sorted(unknown))}")
    with records.read_only(data_dir) as connection:
        sittings = [
            s
            for s in records.load_sittings(connection, exam.id).values()
            if s.state in RESPONSE_STATES and s.part_id in wanted
        ]
        answers = records.load_answers(connection, [s.sitting_id for s in sittings])
    found = []
    for part in exam.parts:
        of_part = sorted((s for s in sittings if s.part_id == part.id), key=lambda s: s.sitting_id)
        forms = assemble_forms(
            secret, exam, part, banks[part.bank_id], [s.candidate_id for s in of_part]
        )
        for sitting, form in zip(of_part, forms, strict=True):
            found.append(
                Responses(
                    sitting.candidate_id,
                    part.id,
                    tuple(item.item_id for item in form.items),
                    answers[sitting.sitting_id],
                    sitting.state,
                    sitting.close_reason,
                    sitting.closed_at,
                )
            )
    return found


def read_responses(path: Path) -> list[Responses]:
    """Responses from a JSON-lines file; `BankError` lists every bad line at once."""
    problems: list[Problem] = []
    found: list[Responses] = []
    seen: set[tuple[str, str]] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue

        def report(reason: str, number: int = number) -> None:
            problems.append(Problem(f"{path}:{number}", None, reason))

        try:
            raw = json.loads(line)
        except ValueError as error:
            report(f"not JSON: {error}")
            continue
        responses = _parse_line(raw, report)
        if responses is None:
            continue
        key = (responses.candidate_id, responses.part_id)
        if key in seen:
            report(f"{key[0]} / {key[1]} appears twice")
            continue
        seen.add(key)
        found.append(responses)
    if problems:
        raise BankError(problems)
    return found


def _parse_line(raw: object, report: Callable[[str], None]) -> Responses | None:
    if not isinstance(raw, dict):
        report("each line must be a JSON object")
        return None
    unknown = sorted(set(raw) - {"candidate", "part", "items", "answers", "state", "reason"})
    if unknown:
        report(f"unknown field(s) {', '.join(unknown)}")
    candidate, part, answers = raw.get("candidate"), raw.get("part"), raw.get("answers", {})
    state, reason = raw.get("state", "submitted"), raw.get("reason", "")
    ok = not unknown
    if not isinstance(candidate, str) or not candidate:
        report("'candidate' must be a non-empty string")
        ok = False
    if not isinstance(part, str) or not part:
        report("'part' must be a non-empty string")
        ok = False
    if state not in RESPONSE_STATES:
        report(f"'state' must be one of {', '.join(RESPONSE_STATES)}, not {state!r}")
        ok = False
    if not isinstance(reason, str):
        report("'reason' must be a string")
        ok = False
    if not isinstance(answers, dict) or not all(
        isinstance(k, str) and (v is None or (isinstance(v, int) and not isinstance(v, bool)))
        for k, v in answers.items()
    ):
        report("'answers' must map item ids to an option index (0-based) or null")
        return None
    items = raw.get("items", list(answers))
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        report("'items' must be a list of item ids")
        return None
    if len(set(items)) != len(items):
        report("'items' lists an item twice")
        ok = False
    stray = sorted(set(answers) - set(items))
    if stray:
        report(f"answers to items not on the form: {', '.join(stray)}")
        ok = False
    if not ok:
        return None
    assert isinstance(candidate, str) and isinstance(part, str) and isinstance(reason, str)
    return Responses(candidate, part, tuple(items), answers, str(state), reason)


def matrix_of(bank: Bank, responses: Sequence[Responses]) -> ResponseMatrix:
    """The response matrix of one part's responses (terminated ones included as given)."""
    rows = [
        (
            Form("", r.candidate_id, r.part_id, tuple(FormItem(i, ()) for i in r.items)),
            r.answers,
        )
        for r in responses
    ]
    try:
        return build_matrix(bank, rows)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def score_responses(
    registry: SchemeRegistry,
    exam: Exam,
    banks: Mapping[str, Bank],
    responses: Sequence[Responses],
) -> list[PartResult]:
    """One result per responses, in the same order: scored by part, terminated ones annulled."""
    scheme = registry.for_exam(exam)
    parts = {part.id: part for part in exam.parts}
    strangers = sorted({r.part_id for r in responses} - set(parts))
    if strangers:
        raise ConfigError(f"exam {exam.id!r} has no part {', '.join(strangers)}")
    results: dict[tuple[str, str], PartResult] = {}
    for part_id, part in parts.items():
        of_part = [r for r in responses if r.part_id == part_id]
        scored = [r for r in of_part if r.state in SCORED_STATES]
        if scored:
            matrix = matrix_of(banks[part.bank_id], scored)
            for result in scheme.score_part(exam, part, matrix):
                results[(result.candidate_id, part_id)] = result
        for r in of_part:
            if r.state == "terminated":
                reason = r.reason or "terminated"
                results[(r.candidate_id, part_id)] = scheme.annulled(
                    exam, part, r.candidate_id, reason
                )
    return [results[(r.candidate_id, r.part_id)] for r in responses]


@dataclass(frozen=True, slots=True)
class Rescored:
    """One sitting scored again, next to what is stored."""

    sitting_id: str
    before: PartResult | None
    after: PartResult
    closed_at: float | None
    held_by: str = ""
    """Set when an appeal decision changed the stored score: re-scoring leaves it alone."""

    @property
    def changed(self) -> bool:
        if self.before is None:
            return True
        return (self.before.score, self.before.max_score, self.before.outcome) != (
            self.after.score,
            self.after.max_score,
            self.after.outcome,
        ) or self.before.reasons != self.after.reasons


def rescore_stored(
    data_dir: Path,
    registry: SchemeRegistry,
    exam: Exam,
    banks: Mapping[str, Bank],
    part_ids: Sequence[str] = (),
) -> list[Rescored]:
    """Score every closed sitting again with the banks as they are now; write nothing."""
    responses = stored_responses(data_dir, exam, banks, part_ids)
    results = score_responses(registry, exam, banks, responses)
    with records.read_only(data_dir) as connection:
        bodies = records.load_result_bodies(connection, exam.id)
    rescored = []
    for r, after in zip(responses, results, strict=True):
        sitting_id = f"{exam.id}/{r.candidate_id}/{r.part_id}"
        body = bodies.get(sitting_id)
        before = None
        held_by = ""
        if body is not None:
            try:
                before = part_result(body)
            except ValueError:
                before = None
            appeal = body.get("details", {}).get("appeal")
            if isinstance(appeal, dict):
                held_by = f"appeal {appeal.get('number')}"
        rescored.append(Rescored(sitting_id, before, after, r.closed_at, held_by))
    return rescored


async def apply(
    store: records.RecordStore,
    registry: SchemeRegistry,
    exam: Exam,
    rescored: Sequence[Rescored],
    cause: str,
    now: float,
) -> list[ScoreChange]:
    """Write the changed results (not those held by an appeal), each journaled with its cause."""
    if not cause.strip():
        raise ConfigError("say why the results are re-scored (the cause goes into the journal)")
    bodies = [
        (r.sitting_id, result_record(registry, exam, r.after, r.closed_at))
        for r in rescored
        if r.changed and not r.held_by
    ]

    def job(connection: sqlite3.Connection) -> list[ScoreChange]:
        records.ensure_schema(connection)
        return [
            records.change_result(connection, store, sitting_id, body, cause.strip(), now)
            for sitting_id, body in bodies
        ]

    return await store.run(job)
