"""KZ prosecution service: the computer test on legislation (KZ-5 … KZ-9).

- Pass only with ≥ 70 % of all items **and** ≥ 70 % of the items of each of three acts (KZ-7),
  in exact integers: 70 % of 15 items needs 11. A failure says which threshold and by how much.
- A terminated sitting is annulled (KZ-5).
- A result is valid one year (KZ-8): through the day before the same date a year later.
- After a result that is not a pass, a new sitting is refused for one calendar month (KZ-9): the
  candidate is told the first day allowed. An annulled result counts as not passed — our reading
  of KZ-5 with KZ-9, since the rules give a removed candidate no earlier return.

Dates are local to the exam (``settings.timezone``, default Asia/Almaty).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

from engine import hookimpl
from engine.book import ResultsBook
from engine.dates import add_months, add_years, day_text, exam_zone, local_date
from engine.documents import Document
from engine.model import Candidate, Exam, Part
from engine.schemes import (
    ADMITTED,
    AdmissionDecision,
    DocumentKind,
    Outcome,
    PartResult,
    PartSpec,
    PastSitting,
    ResultTerms,
    Scheme,
)
from engine.scoring import ResponseMatrix, distinct_rows, needed_for_share, reaches_share
from plugins import kz_documents

PASS_PERCENT = 70
THRESHOLD_ACTS = ("prosecutor-office", "anti-corruption", "ethics-code")
"""The Law on the Prosecutor's Office, the Law on Countering Corruption, the Ethics Code."""
ITEMS = 120
MINUTES = 90
DEFAULT_TIMEZONE = "Asia/Almaty"
NOT_PASSED = (Outcome.FAIL, Outcome.ANNULLED)
_T = TypeVar("_T")


class KzProsecutorScheme(Scheme):
    name: ClassVar[str] = "kz-prosecutor"
    title: ClassVar[str] = "KZ prosecution service: 70 % overall and in each of three acts"

    def part_specs(self) -> Sequence[PartSpec]:
        return (
            PartSpec(
                "legislation",
                items=ITEMS,
                time_limit_s=MINUTES * 60,
                dimension="act",
                required_values=THRESHOLD_ACTS,
                rule="KZ-6, KZ-7",
            ),
        )

    def check_exam(self, exam: Exam) -> list[str]:
        """Any single part will do (its id is free); it must have KZ's numbers."""
        if len(exam.parts) != 1:
            return [f"the KZ test is one part; exam {exam.id!r} has {len(exam.parts)}"]
        (spec,) = self.part_specs()
        return spec.problems(exam.parts[0])

    def score_part(self, exam: Exam, part: Part, matrix: ResponseMatrix) -> list[PartResult]:
        """The thresholds as arrays over all rows; texts and details once per distinct counts.

        A million candidates have some 70,000 distinct (overall, per-act) counts: results with
        equal counts share one reasons tuple and one details mapping (read-only, like every
        `PartResult`), since writing them per row cost more than the rules themselves.
        """
        if part.blueprint.dimension != "act" or "act" not in matrix.tags:
            raise ValueError(f"part {part.id!r} must draw its items by 'act' (KZ-7)")
        groups = matrix.group_counts("act")
        missing = [act for act in THRESHOLD_ACTS if act not in groups]
        if missing:
            raise ValueError(f"no items of {', '.join(missing)} on any form: KZ-7 cannot be judged")
        act_right = [groups[act][0] for act in THRESHOLD_ACTS]
        act_items = [groups[act][1] for act in THRESHOLD_ACTS]
        without_items = np.argwhere(np.stack(act_items, axis=1) == 0)
        if without_items.size:
            row, act = without_items[0].tolist()
            candidate_id = matrix.candidate_ids[row]
            raise ValueError(f"{candidate_id}'s form has no items of {THRESHOLD_ACTS[act]} (KZ-7)")
        correct = np.sum([right for right, _ in groups.values()], axis=0)  # every item has an act
        kinds, kind_of_row = distinct_rows(np.stack([correct, *act_right, *act_items], axis=1))
        score, outcome, reasons, details = (
            _spread(column, kind_of_row) for column in _results_by_kind(part.blueprint.total, kinds)
        )
        return list(
            map(
                PartResult,
                matrix.candidate_ids,
                repeat(part.id),
                score,
                repeat(float(part.blueprint.total)),
                outcome,
                reasons,
                details,
            )
        )

    def result_terms(self, exam: Exam, result: PartResult, closed_at: float) -> ResultTerms:
        """Valid one year (KZ-8); after anything but a pass, a retake one month on (KZ-9)."""
        if result.outcome not in (Outcome.PASS, *NOT_PASSED):
            return ResultTerms()
        day = local_date(closed_at, exam_zone(exam, DEFAULT_TIMEZONE))
        valid = (
            add_years(day, 1) - datetime.timedelta(days=1)
            if result.outcome is not Outcome.ANNULLED
            else None
        )
        retake = add_months(day, 1) if result.outcome in NOT_PASSED else None
        return ResultTerms(valid_through=valid, retake_from=retake)

    def admit(
        self,
        exam: Exam,
        candidate: Candidate,
        part_id: str | None,
        history: Sequence[PastSitting],
        now: float,
    ) -> AdmissionDecision:
        """Refuse a new sitting until one calendar month after the last result not passed."""
        tz = exam_zone(exam, DEFAULT_TIMEZONE)
        not_passed = [
            past
            for past in history
            if past.outcome in NOT_PASSED and past.closed_at is not None and past.closed_at <= now
        ]
        if not not_passed:
            return ADMITTED
        last = max(not_passed, key=lambda past: past.closed_at or 0.0)
        assert last.closed_at is not None
        sat_on = local_date(last.closed_at, tz)
        allowed_from = add_months(sat_on, 1)
        if local_date(now, tz) >= allowed_from:
            return ADMITTED
        what = "annulled" if last.outcome is Outcome.ANNULLED else "not passed"
        return AdmissionDecision(
            False,
            "KZ-9",
            f"the test of {day_text(sat_on)} ({last.exam_id}) was {what}; a new sitting is "
            f"allowed no earlier than one month later, from {day_text(allowed_from)} "
            f"(the wait ends on {day_text(allowed_from - datetime.timedelta(days=1))})",
            allowed_from,
        )

    def document_kinds(self, exam: Exam) -> Sequence[DocumentKind]:
        return (
            DocumentKind(
                kz_documents.CERTIFICATE,
                "Result certificate (KZ-8)",
                issued_on_close=("submitted", "expired", "terminated"),
            ),
        )

    def build_documents(self, exam: Exam, kind: str, book: ResultsBook) -> list[Document]:
        return kz_documents.certificates(exam, book, THRESHOLD_ACTS, PASS_PERCENT)


def _results_by_kind(
    total: int, kinds: npt.NDArray[np.int64]
) -> tuple[list[float], list[Outcome], list[tuple[str, ...]], list[dict[str, Any]]]:
    """Score, outcome, reasons and details of each row of (correct, act correct × 3, act items
    × 3); per-act entries and shortfall texts recur across rows and are made once each."""
    overall_needed = needed_for_share(total, PASS_PERCENT)
    acts = len(THRESHOLD_ACTS)
    reached = [reaches_share(kinds[:, 0], total, PASS_PERCENT)]
    reached += [
        reaches_share(kinds[:, 1 + n], kinds[:, 1 + acts + n], PASS_PERCENT) for n in range(acts)
    ]
    entries: dict[tuple[int, int, int], tuple[dict[str, int], str | None]] = {}
    texts: dict[int, str | None] = {}
    scores, outcomes, reasons, details = [], [], [], []
    for counts, passes in zip(kinds.tolist(), np.stack(reached, axis=1).tolist(), strict=True):
        right = counts[0]
        if right not in texts:
            texts[right] = (
                None if passes[0] else _shortfall("overall", right, total, overall_needed)
            )
        shortfalls = [texts[right]]
        per_act = {}
        for n, act in enumerate(THRESHOLD_ACTS):
            key = (n, counts[1 + n], counts[1 + acts + n])
            entry = entries.get(key)
            if entry is None:
                entry = entries[key] = _act_entry(act, key[1], key[2], passes[1 + n])
            per_act[act], text = entry
            shortfalls.append(text)
        scores.append(float(right))
        outcomes.append(Outcome.PASS if all(passes) else Outcome.FAIL)
        reasons.append(tuple(text for text in shortfalls if text is not None))
        details.append(
            {
                "correct": right,
                "items": total,
                "needed": overall_needed,
                "percent": percent_floor(right, total),
                "per_act": per_act,
            }
        )
    return scores, outcomes, reasons, details


def _act_entry(
    act: str, right: int, items: int, reached: bool
) -> tuple[dict[str, int], str | None]:
    """An act's details entry, and its shortfall text when the threshold is not reached."""
    needed = needed_for_share(items, PASS_PERCENT)
    entry = {"correct": right, "items": items, "needed": needed}
    return entry, None if reached else _shortfall(act, right, items, needed)


def _spread(values: Sequence[_T], index: npt.NDArray[np.intp]) -> list[_T]:
    """values[index[row]] for every row, gathered in C (a million rows)."""
    gathered: list[_T] = np.fromiter(values, dtype=object, count=len(values))[index].tolist()
    return gathered


def _shortfall(what: str, right: int, items: int, needed: int) -> str:
    return (
        f"{what}: {right} of {items} correct ({percent_floor(right, items):.2f} %), "
        f"{needed} needed for {PASS_PERCENT} %: {needed - right} short"
    )


def percent_floor(right: int, items: int) -> float:
    """The share in percent, cut (not rounded) to 2 decimals: 69.999 % never shows as 70."""
    return (right * 10_000 // items) / 100 if items else 0.0


@hookimpl
def examhall_register_schemes(register: Callable[[Scheme], None]) -> None:
    register(KzProsecutorScheme())
