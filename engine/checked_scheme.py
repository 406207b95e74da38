"""The guard between the engine and a scheme: every answer is checked before it is used.

`CheckedScheme` has the methods of `engine.schemes.Scheme`; each one calls the plugin, turns an
exception into a `PluginError` naming the plugin, and refuses an answer of the wrong type,
for the wrong candidates, or with a score that is not a finite number within 0..maximum.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from engine.collector import collector_paused
from engine.exceptions import PluginError
from engine.model import Candidate, Exam, Part
from engine.schemes import (
    AdmissionDecision,
    AppealPolicy,
    DocumentKind,
    ExamResult,
    Outcome,
    PartResult,
    PartSpec,
    PastSitting,
    RatingList,
    ResultTerms,
    Scheme,
    is_number,
)
from engine.scoring import ResponseMatrix

if TYPE_CHECKING:
    from engine.book import ResultsBook
    from engine.documents import Document

T = TypeVar("T")

BULK_ROWS = 10_000
"""From this many candidates a `score_part` call runs with the collector paused."""


@dataclass(frozen=True)
class CheckedScheme:
    """A registered scheme and the plugin that registered it, called only through checks."""

    scheme: Scheme
    plugin: str

    @property
    def name(self) -> str:
        return self.scheme.name

    @property
    def title(self) -> str:
        return self.scheme.title

    @property
    def shows_result_to_candidate(self) -> bool:
        return bool(self.scheme.shows_result_to_candidate)

    @property
    def result_signers(self) -> tuple[str, ...]:
        signers = self.scheme.result_signers
        if not isinstance(signers, tuple) or not all(isinstance(s, str) for s in signers):
            raise self._error(f"result_signers must be a tuple of roles, got {signers!r}")
        return signers

    def _error(self, reason: str) -> PluginError:
        return PluginError(self.plugin, f"scheme {self.scheme.name!r}: {reason}")

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except PluginError:
            raise
        except Exception as error:
            raise self._error(f"{what} raised {error!r}") from error

    # -- structure ---------------------------------------------------------------------------

    def part_specs(self) -> list[PartSpec]:
        specs = self._call("part_specs", lambda: list(self.scheme.part_specs()))
        if not all(isinstance(spec, PartSpec) for spec in specs):
            raise self._error("part_specs must return PartSpec values")
        return specs

    def check_exam(self, exam: Exam) -> list[str]:
        problems = self._call("check_exam", lambda: self.scheme.check_exam(exam))
        if not isinstance(problems, list) or not all(isinstance(p, str) for p in problems):
            raise self._error("check_exam must return a list of strings")
        return problems

    # -- scoring -----------------------------------------------------------------------------

    def score_part(self, exam: Exam, part: Part, matrix: ResponseMatrix) -> list[PartResult]:
        bulk = len(matrix.candidate_ids) >= BULK_ROWS
        with collector_paused() if bulk else contextlib.nullcontext():
            results = self._call("score_part", lambda: self.scheme.score_part(exam, part, matrix))
            self._check_part_results(part, list(matrix.candidate_ids), results)
        return results

    def annulled(self, exam: Exam, part: Part, candidate_id: str, reason: str) -> PartResult:
        result = self._call(
            "annulled", lambda: self.scheme.annulled(exam, part, candidate_id, reason)
        )
        self._check_part_results(part, [candidate_id], [result])
        if result.outcome is not Outcome.ANNULLED:
            raise self._error(f"annulled returned outcome {result.outcome.value!r}")
        return result

    def absent(self, exam: Exam, part: Part, candidate_id: str, reason: str) -> PartResult:
        result = self._call("absent", lambda: self.scheme.absent(exam, part, candidate_id, reason))
        self._check_part_results(part, [candidate_id], [result])
        return result

    def _check_part_results(self, part: Part, expected: list[str], results: object) -> None:
        if not isinstance(results, list) or not all(isinstance(r, PartResult) for r in results):
            raise self._error("score_part must return a list of PartResult")
        _check_candidates(self, expected, [result.candidate_id for result in results])
        checked: set[tuple[int, int]] = set()
        for result in results:
            if not isinstance(result.outcome, Outcome):
                raise self._error(f"outcome {result.outcome!r} for {result.candidate_id}")
            _check_score(self, result.candidate_id, result.score, result.max_score)
            # Schemes share reasons and details between equal results: check each pair once.
            shared = (id(result.reasons), id(result.details))
            if shared not in checked:
                body = {"reasons": list(result.reasons), "details": dict(result.details)}
                _check_json(self, result.candidate_id, body)
                checked.add(shared)
            if result.part_id != part.id:
                raise self._error(f"result for part {result.part_id!r}, expected {part.id!r}")

    def combine(
        self, exam: Exam, results: Mapping[str, Mapping[str, PartResult]]
    ) -> list[ExamResult]:
        combined = self._call("combine", lambda: self.scheme.combine(exam, results))
        if not isinstance(combined, list) or not all(isinstance(r, ExamResult) for r in combined):
            raise self._error("combine must return a list of ExamResult")
        _check_candidates(self, list(results), [result.candidate_id for result in combined])
        for result in combined:
            if not isinstance(result.outcome, Outcome):
                raise self._error(f"outcome {result.outcome!r} for {result.candidate_id}")
            _check_score(self, result.candidate_id, result.score, result.max_score)
            for part_id, score in result.part_scores.items():
                if not is_number(score):
                    raise self._error(f"part score {part_id}={score!r} of {result.candidate_id}")
            _check_json(self, result.candidate_id, result.to_json())
        return combined

    def rank(
        self, exam: Exam, results: Sequence[ExamResult], candidates: Mapping[str, Candidate]
    ) -> list[RatingList]:
        ratings = self._call("rank", lambda: self.scheme.rank(exam, results, candidates))
        if not isinstance(ratings, list) or not all(isinstance(r, RatingList) for r in ratings):
            raise self._error("rank must return a list of RatingList")
        known = {result.candidate_id for result in results}
        seen: set[str] = set()
        for rating in ratings:
            previous = 0
            listed = [entry.candidate_id for entry in rating.entries]
            listed += [candidate_id for candidate_id, _ in rating.unranked]
            strangers = sorted(set(listed) - known)
            if strangers:
                raise self._error(f"rating {rating.group!r} lists unknown candidates {strangers}")
            repeated = {c for c, n in Counter(listed).items() if n > 1}
            twice = sorted(seen.intersection(listed) | repeated)
            if twice:
                raise self._error(f"rating lists candidates more than once: {twice}")
            seen.update(listed)
            for number, entry in enumerate(rating.entries, start=1):
                if not is_number(entry.score):
                    raise self._error(f"rating score {entry.score!r} of {entry.candidate_id}")
                if not previous <= entry.position <= number or entry.position < 1:
                    raise self._error(
                        f"rating {rating.group!r}: position {entry.position} at place {number}"
                    )
                previous = entry.position
        return ratings

    # -- rules over time ---------------------------------------------------------------------

    def result_terms(self, exam: Exam, result: PartResult, closed_at: float) -> ResultTerms:
        terms = self._call(
            "result_terms", lambda: self.scheme.result_terms(exam, result, closed_at)
        )
        if not isinstance(terms, ResultTerms):
            raise self._error("result_terms must return ResultTerms")
        closed_day = datetime.datetime.fromtimestamp(closed_at, datetime.UTC).date()
        for label, day in (
            ("valid_through", terms.valid_through),
            ("retake_from", terms.retake_from),
        ):
            if day is None:
                continue
            if not isinstance(day, datetime.date) or day < closed_day - datetime.timedelta(days=1):
                raise self._error(f"{label} {day!r} is before the sitting closed")
        return terms

    def admit(
        self,
        exam: Exam,
        candidate: Candidate,
        part_id: str | None,
        history: Sequence[PastSitting],
        now: float,
    ) -> AdmissionDecision:
        decision = self._call(
            "admit", lambda: self.scheme.admit(exam, candidate, part_id, history, now)
        )
        if not isinstance(decision, AdmissionDecision):
            raise self._error("admit must return an AdmissionDecision")
        if not decision.admitted and not (decision.rule and decision.reason):
            raise self._error("a refusal must name its rule and give a reason")
        return decision

    def appeal_policy(self, exam: Exam) -> AppealPolicy | None:
        policy = self._call("appeal_policy", lambda: self.scheme.appeal_policy(exam))
        if policy is not None and not isinstance(policy, AppealPolicy):
            raise self._error("appeal_policy must return an AppealPolicy or None")
        if policy is not None:
            numerator, denominator = policy.quorum
            if not 0 < numerator <= denominator or policy.min_group_size < 1:
                raise self._error(f"appeal policy has an impossible quorum {policy.quorum}")
        return policy

    # -- documents ---------------------------------------------------------------------------

    def document_kinds(self, exam: Exam) -> list[DocumentKind]:
        kinds = self._call("document_kinds", lambda: list(self.scheme.document_kinds(exam)))
        if not all(isinstance(kind, DocumentKind) for kind in kinds):
            raise self._error("document_kinds must return DocumentKind values")
        names = [kind.kind for kind in kinds]
        if len(set(names)) != len(names):
            raise self._error(f"document kinds repeat: {names}")
        return kinds

    def build_documents(self, exam: Exam, kind: str, book: ResultsBook) -> list[Document]:
        from engine.documents import Document

        declared = [k.kind for k in self.document_kinds(exam)]
        if kind not in declared:
            raise PluginError(
                self.plugin,
                f"scheme {self.name!r} produces no {kind!r} documents "
                f"(it produces: {', '.join(declared) or 'none'})",
            )
        documents = self._call(
            "build_documents", lambda: self.scheme.build_documents(exam, kind, book)
        )
        if not isinstance(documents, list) or not all(isinstance(d, Document) for d in documents):
            raise self._error("build_documents must return a list of Document")
        names = [document.name for document in documents]
        if len(set(names)) != len(names):
            raise self._error(f"two {kind} documents share a file name")
        for document in documents:
            if document.kind != kind:
                raise self._error(f"asked for {kind!r}, returned a {document.kind!r} document")
        return documents


def _check_candidates(scheme: CheckedScheme, expected: list[str], returned: list[str]) -> None:
    if returned != expected:
        missing = sorted(set(expected) - set(returned))
        extra = sorted(set(returned) - set(expected))
        order = "" if missing or extra else " (or not in the order given)"
        raise scheme._error(
            f"results do not match the candidates scored (missing {missing}, "
            f"unexpected {extra}){order}"
        )


def _check_score(scheme: CheckedScheme, candidate_id: str, score: object, maximum: object) -> None:
    for label, value in (("score", score), ("max_score", maximum)):
        if not is_number(value):
            raise scheme._error(f"{label} {value!r} for {candidate_id} is not a number")
    assert isinstance(score, int | float) and isinstance(maximum, int | float)
    if not 0 <= score <= maximum:
        raise scheme._error(f"score {score} for {candidate_id} is outside 0..{maximum}")


def _check_json(scheme: CheckedScheme, candidate_id: str, body: dict[str, Any]) -> None:
    """Results are stored and sent as JSON: reasons must be text, details plain JSON values."""
    if not all(isinstance(reason, str) for reason in body["reasons"]):
        raise scheme._error(f"reasons for {candidate_id} must be strings")
    try:
        json.dumps(body, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise scheme._error(f"the result of {candidate_id} is not plain JSON: {error}") from None
