"""UA prosecution service: testing for local prosecutor's offices (UA-7 … UA-17).

- Professional part: a unique 100-item form per candidate, 1 point each, at most 2 hours (UA-10).
- Aptitude part: at most 100 items in at most 1 hour, with logical / verbal / numerical
  sub-scores (UA-11).
- Total out of 200 in equal halves (UA-12): each part is scaled to 100, so an aptitude part of
  90 items counts 100 · correct / 90. Totals are compared exactly (as fractions), never as
  rounded floats.
- One rating list per local office, total high to low (UA-13); ties are ordered by `TIE_RULE`;
  top N for N posts (UA-17), naming any tie that crosses the last post.
- No-show is final and there is no retake (UA-7, 3.9); a removed candidate is not admitted to
  the next part and gets a removal act (UA-3); removal cannot be appealed (UA-16).
- Appeals: on the day the result was shown, or by the next day after a non-admission notice;
  decided by the working group (≥ 15, quorum 2/3, simple majority) by the next day (UA-16).

Dates are local to the exam (``settings.timezone``, default Europe/Kyiv).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from typing import ClassVar

from engine import hookimpl
from engine.book import ResultsBook
from engine.dates import exam_zone
from engine.documents import Document
from engine.model import Candidate, Exam, Part
from engine.schemes import (
    ADMITTED,
    AdmissionDecision,
    AppealPolicy,
    DocumentKind,
    ExamResult,
    Outcome,
    PartResult,
    PartSpec,
    PastSitting,
    RatingEntry,
    RatingList,
    Scheme,
)
from engine.scoring import ResponseMatrix
from plugins import ua_documents

PROFESSIONAL = "professional"
APTITUDE = "aptitude"
PARTS = (PROFESSIONAL, APTITUDE)
PART_MAXIMUM = 100
"""Each part counts for 100 of the 200 points (UA-12)."""
APTITUDE_CATEGORIES = ("logical", "verbal", "numerical")
DEFAULT_TIMEZONE = "Europe/Kyiv"
MIN_GROUP_SIZE = 15
NO_OFFICE = "—"
TIE_RULE = (
    "Порядок при рівних балах: вищий підсумковий бал; за його рівності — вищий бал "
    "професійного тесту; за рівності й цього кандидати мають спільне місце (позначене «=») і "
    "наводяться за ідентифікатором реєстрації; якщо спільне місце перетинає межу кількості "
    "посад, рішення ухвалює робоча група."
)


class UaProsecutorScheme(Scheme):
    name: ClassVar[str] = "ua-prosecutor"
    title: ClassVar[str] = "UA prosecution service: professional 100 + aptitude 100"
    result_signers: ClassVar[tuple[str, ...]] = ("candidate", "member")

    def part_specs(self) -> Sequence[PartSpec]:
        return (
            PartSpec(PROFESSIONAL, items=100, max_time_limit_s=2 * 3600, rule="UA-10"),
            PartSpec(
                APTITUDE,
                max_items=100,
                max_time_limit_s=3600,
                dimension="category",
                required_values=APTITUDE_CATEGORIES,
                rule="UA-11",
            ),
        )

    def score_part(self, exam: Exam, part: Part, matrix: ResponseMatrix) -> list[PartResult]:
        """1 point per correct answer; sub-scores per tag of the part's blueprint dimension."""
        correct = matrix.correct_counts
        total = part.blueprint.total
        groups = matrix.group_counts(part.blueprint.dimension)
        results = []
        for row, candidate_id in enumerate(matrix.candidate_ids):
            right = int(correct[row])
            results.append(
                PartResult(
                    candidate_id,
                    part.id,
                    float(right),
                    float(total),
                    Outcome.SCORED,
                    (),
                    {
                        "scaled_to_100": round(float(scaled(right, total)), 2),
                        "by_" + part.blueprint.dimension: {
                            value: {"correct": int(counts[0][row]), "items": int(counts[1][row])}
                            for value, counts in groups.items()
                        },
                    },
                )
            )
        return results

    def combine(
        self, exam: Exam, results: Mapping[str, Mapping[str, PartResult]]
    ) -> list[ExamResult]:
        """Total = professional scaled to 100 + aptitude scaled to 100 (UA-12)."""
        combined = []
        for candidate_id, by_part in results.items():
            present = {p: by_part[p] for p in PARTS if p in by_part}
            scaled_scores = {
                p: scaled(r.score, r.max_score)
                for p, r in present.items()
                if r.outcome is Outcome.SCORED
            }
            outcomes = {result.outcome for result in present.values()}
            reasons = [reason for result in present.values() for reason in result.reasons]
            if Outcome.ANNULLED in outcomes:
                outcome = Outcome.ANNULLED
            elif Outcome.ABSENT in outcomes:
                outcome = Outcome.ABSENT
            elif len(scaled_scores) < len(PARTS):
                outcome = Outcome.INCOMPLETE
                reasons += [f"no result of the {p} test" for p in PARTS if p not in present]
            else:
                outcome = Outcome.SCORED
            exact = sum(scaled_scores.values(), Fraction(0))
            combined.append(
                ExamResult(
                    candidate_id,
                    round(float(exact), 2),
                    float(PART_MAXIMUM * len(PARTS)),
                    outcome,
                    {p: round(float(v), 2) for p, v in scaled_scores.items()},
                    tuple(reasons),
                    {
                        "exact_total": str(exact),
                        "raw": {p: r.score for p, r in present.items()},
                        "items": {p: r.max_score for p, r in present.items()},
                    },
                )
            )
        return combined

    def rank(
        self, exam: Exam, results: Sequence[ExamResult], candidates: Mapping[str, Candidate]
    ) -> list[RatingList]:
        """One list per local office (UA-13), ordered by `TIE_RULE`."""
        by_office: dict[str, list[ExamResult]] = {}
        for result in results:
            office = (
                candidates[result.candidate_id].office if result.candidate_id in candidates else ""
            )
            by_office.setdefault(office or NO_OFFICE, []).append(result)
        return [
            _rating(office, by_office[office])
            for office in sorted(by_office, key=ua_documents.ukrainian_order)
        ]

    def admit(
        self,
        exam: Exam,
        candidate: Candidate,
        part_id: str | None,
        history: Sequence[PastSitting],
        now: float,
    ) -> AdmissionDecision:
        """No-show is final (UA-7), a removed candidate goes no further (UA-3), no retake (3.9)."""
        for past in history:
            if not past.same_exam:
                continue
            if past.state == "no-show":
                return AdmissionDecision(
                    False,
                    "UA-7",
                    f"did not appear in time for the {past.part_id} test: not admitted to "
                    "further testing",
                )
            if past.state == "terminated":
                return AdmissionDecision(
                    False,
                    "UA-3",
                    f"removed from the {past.part_id} test: not admitted to further testing",
                )
            if past.part_id == part_id and past.state in ("submitted", "expired"):
                return AdmissionDecision(
                    False,
                    "UA-7",
                    f"the {past.part_id} test was already taken (as {past.candidate_id}); "
                    "a repeated test is not allowed",
                )
        return ADMITTED

    def appeal_policy(self, exam: Exam) -> AppealPolicy:
        return AppealPolicy(
            rule="UA-16",
            timezone=str(exam_zone(exam, DEFAULT_TIMEZONE)),
            subjects=("result", "non-admission"),
            refused_subjects={
                "removal": "complaints about removal from testing are not considered (UA-16, 8.2)"
            },
            days_after_result=0,
            days_after_refusal=1,
            decision_days=1,
            min_group_size=MIN_GROUP_SIZE,
            quorum=(2, 3),
        )

    def document_kinds(self, exam: Exam) -> Sequence[DocumentKind]:
        return (
            DocumentKind(ua_documents.RESULTS_SHEET, "Results sheet (annex 1, UA-9)"),
            DocumentKind(ua_documents.RATING_LIST, "Rating list (annex 2, UA-13)"),
            DocumentKind(
                ua_documents.REMOVAL_ACT, "Removal act (UA-3)", issued_on_close=("terminated",)
            ),
            DocumentKind(ua_documents.APPEAL_PROTOCOL, "Appeal protocol (UA-16)"),
        )

    def build_documents(self, exam: Exam, kind: str, book: ResultsBook) -> list[Document]:
        return ua_documents.build(exam, kind, book, TIE_RULE)


def scaled(score: float, maximum: float) -> Fraction:
    """`score` of `maximum` on a 0–100 scale, exactly (UA-12)."""
    if maximum <= 0:
        raise ValueError("a part without items cannot be scaled")
    return Fraction(PART_MAXIMUM) * Fraction(score) / Fraction(maximum)


def _rating(office: str, results: list[ExamResult]) -> RatingList:
    ranked = [r for r in results if r.outcome is Outcome.SCORED]
    unranked = tuple(
        (r.candidate_id, r.outcome.value + (": " + "; ".join(r.reasons) if r.reasons else ""))
        for r in sorted(
            (r for r in results if r.outcome is not Outcome.SCORED), key=lambda r: r.candidate_id
        )
    )

    def merit(result: ExamResult) -> tuple[Fraction, Fraction]:
        raw, items = result.details["raw"], result.details["items"]
        professional = scaled(raw[PROFESSIONAL], items[PROFESSIONAL])
        return professional + scaled(raw[APTITUDE], items[APTITUDE]), professional

    ordered = sorted(ranked, key=lambda r: (tuple(-v for v in merit(r)), r.candidate_id))
    entries: list[RatingEntry] = []
    for place, result in enumerate(ordered, start=1):
        shares = bool(entries) and merit(ordered[place - 2]) == merit(result)
        position = entries[-1].position if shares else place
        entries.append(
            RatingEntry(position, result.candidate_id, result.score, result.part_scores, shares)
        )
    marked = tuple(
        RatingEntry(e.position, e.candidate_id, e.score, e.part_scores, True)
        if sum(1 for o in entries if o.position == e.position) > 1
        else e
        for e in entries
    )
    return RatingList(office, marked, unranked, TIE_RULE)


@hookimpl
def examhall_register_schemes(register: Callable[[Scheme], None]) -> None:
    register(UaProsecutorScheme())
