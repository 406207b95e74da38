"""KZ prosecution service: pass with ≥ 70 % overall and ≥ 70 % in each of three acts (KZ-7).

Exact integer arithmetic: 70 % of 15 items needs 11. A terminated sitting is annulled (KZ-5).
"""

from __future__ import annotations

from typing import ClassVar

from engine import hookimpl
from engine.model import Exam, Part
from engine.schemes import Outcome, PartResult, Scheme
from engine.scoring import ResponseMatrix, needed_for_share, reaches_share

PASS_PERCENT = 70
THRESHOLD_ACTS = ("prosecutor-office", "anti-corruption", "ethics-code")


class KzProsecutorScheme(Scheme):
    name: ClassVar[str] = "kz-prosecutor"
    title: ClassVar[str] = "KZ prosecution service: 70 % overall and in each of three acts"

    def score_part(self, exam: Exam, part: Part, matrix: ResponseMatrix) -> list[PartResult]:
        correct = matrix.correct.sum(axis=1)
        total = part.blueprint.total
        overall_ok = reaches_share(correct, total, PASS_PERCENT)
        groups = matrix.group_counts(part.blueprint.dimension)
        results = []
        for row, candidate_id in enumerate(matrix.candidate_ids):
            reasons = []
            if not overall_ok[row]:
                need = needed_for_share(total, PASS_PERCENT)
                reasons.append(
                    f"overall: {int(correct[row])} of {total} correct, {need} needed "
                    f"({need - int(correct[row])} short)"
                )
            per_act = {}
            for act in THRESHOLD_ACTS:
                if act not in groups:
                    continue
                act_correct, act_total = int(groups[act][0][row]), int(groups[act][1][row])
                need = needed_for_share(act_total, PASS_PERCENT)
                per_act[act] = {"correct": act_correct, "items": act_total, "needed": need}
                if act_correct < need:
                    reasons.append(
                        f"{act}: {act_correct} of {act_total} correct, {need} needed "
                        f"({need - act_correct} short)"
                    )
            results.append(
                PartResult(
                    candidate_id,
                    part.id,
                    float(correct[row]),
                    float(total),
                    Outcome.FAIL if reasons else Outcome.PASS,
                    tuple(reasons),
                    {"per_act": per_act, "percent": round(100 * int(correct[row]) / total, 2)},
                )
            )
        return results


@hookimpl
def examhall_register_schemes(register):  # type: ignore[no-untyped-def]
    register(KzProsecutorScheme())
