"""UA prosecution service: 1 point per correct item, per part (UA-10, UA-11).

The total of 200 in equal halves, ratings per office and appeals build on these part scores.
"""

from __future__ import annotations

from typing import ClassVar

from engine import hookimpl
from engine.model import Exam, Part
from engine.schemes import Outcome, PartResult, Scheme
from engine.scoring import ResponseMatrix


class UaProsecutorScheme(Scheme):
    name: ClassVar[str] = "ua-prosecutor"
    title: ClassVar[str] = "UA prosecution service: professional 100 + aptitude 100"

    def score_part(self, exam: Exam, part: Part, matrix: ResponseMatrix) -> list[PartResult]:
        correct = matrix.correct.sum(axis=1)
        total = part.blueprint.total
        scaled = correct * 100.0 / total
        groups = matrix.group_counts(part.blueprint.dimension)
        return [
            PartResult(
                candidate_id,
                part.id,
                float(correct[row]),
                float(total),
                Outcome.SCORED,
                (),
                {
                    "scaled_to_100": round(float(scaled[row]), 2),
                    "by_" + part.blueprint.dimension: {
                        value: int(counts[0][row]) for value, counts in groups.items()
                    },
                },
            )
            for row, candidate_id in enumerate(matrix.candidate_ids)
        ]


@hookimpl
def examhall_register_schemes(register):  # type: ignore[no-untyped-def]
    register(UaProsecutorScheme())
