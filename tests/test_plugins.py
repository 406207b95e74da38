"""The plugin manager and the guard: every scheme hook is called, checked, and a bad answer is
reported with the plugin's name."""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pytest

from engine import hookimpl
from engine.book import ResultsBook
from engine.documents import Document
from engine.exceptions import ConfigError, PluginError
from engine.model import Candidate, Exam, Part
from engine.plugins import SchemeRegistry, create_plugin_manager, load_entry_points
from engine.schemes import (
    AdmissionDecision,
    AppealPolicy,
    DocumentKind,
    ExamResult,
    Outcome,
    PartResult,
    PartSpec,
    RatingEntry,
    RatingList,
    ResultTerms,
    Scheme,
)
from engine.scoring import ResponseMatrix
from tests.matrices import answering, bank_of, exam_of, part_of

BANK = bank_of("act", {"a": 3, "b": 3})
PART = part_of("main", BANK, "act")


class Honest(Scheme):
    """Counts correct answers; every other hook answers sensibly. Tests break one hook each."""

    name: ClassVar[str] = "honest"

    def score_part(self, exam: Exam, part: Part, matrix: ResponseMatrix) -> list[PartResult]:
        return [
            PartResult(c, part.id, float(n), float(part.blueprint.total), Outcome.SCORED)
            for c, n in zip(matrix.candidate_ids, matrix.correct_counts.tolist(), strict=True)
        ]


def registry_with(*schemes: Scheme) -> SchemeRegistry:
    manager = create_plugin_manager(builtins=(), entry_points=False)
    for number, scheme in enumerate(schemes):
        manager.register(_plugin_for(scheme), name=f"fake-plugin-{number}")
    return SchemeRegistry(manager)


def _plugin_for(scheme: object) -> object:
    class Plugin:
        @hookimpl
        def examhall_register_schemes(self, register: Callable[[object], None]) -> None:
            register(scheme)

    return Plugin()


def exam_for(scheme: Scheme) -> Exam:
    return exam_of(scheme.name, [PART])


def matrix(rows: int = 2) -> ResponseMatrix:
    return answering(BANK, "act", [{"a": r} for r in range(rows)])


def scored(scheme: Scheme) -> list[PartResult]:
    return registry_with(scheme).score_part(exam_for(scheme), PART, matrix())


def test_a_good_plugin_scores_through_the_guard() -> None:
    results = scored(Honest())
    assert [(r.candidate_id, r.score) for r in results] == [("c000", 0.0), ("c001", 1.0)]


class Nonsense(Honest):
    def __init__(self, mutate: Callable[[list[PartResult]], object]) -> None:
        self.mutate = mutate

    def score_part(self, exam: Exam, part: Part, matrix: ResponseMatrix) -> list[PartResult]:
        return self.mutate(super().score_part(exam, part, matrix))  # type: ignore[return-value]


def _replace(result: PartResult, **changes: Any) -> PartResult:
    fields = {**result.__class__.__dataclass_fields__}
    values = {name: getattr(result, name) for name in fields}
    return PartResult(**{**values, **changes})


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda rs: [_replace(rs[0], score=math.nan), rs[1]], "score nan for c000 is not a number"),
        (lambda rs: [_replace(rs[0], score=7.0), rs[1]], "score 7.0 for c000 is outside 0..6.0"),
        (lambda rs: [_replace(rs[0], score=-1.0), rs[1]], "outside 0..6.0"),
        (lambda rs: [_replace(rs[0], max_score=math.inf), rs[1]], "max_score inf"),
        (lambda rs: rs[:1], "missing ['c001']"),
        (lambda rs: [*rs, _replace(rs[0], candidate_id="ghost")], "unexpected ['ghost']"),
        (lambda rs: rs[::-1], "not in the order given"),
        (lambda rs: [_replace(rs[0], part_id="other"), rs[1]], "expected 'main'"),
        (lambda rs: tuple(rs), "must return a list of PartResult"),
        (lambda rs: [_replace(rs[0], details={"x": {1, 2}}), rs[1]], "not plain JSON"),
        (lambda rs: [_replace(rs[0], details={"x": math.nan}), rs[1]], "not plain JSON"),
        (lambda rs: [_replace(rs[0], reasons=(3,)), rs[1]], "reasons for c000 must be strings"),
        (lambda rs: [_replace(rs[0], outcome="pass"), rs[1]], "outcome 'pass'"),
    ],
)
def test_nonsense_from_score_part_is_reported_with_the_plugin(
    mutate: Callable[[list[PartResult]], object], message: str
) -> None:
    with pytest.raises(PluginError) as raised:
        scored(Nonsense(mutate))
    assert raised.value.plugin == "fake-plugin-0"
    assert message in str(raised.value)


def test_a_plugin_that_raises_is_named_and_its_error_kept() -> None:
    class Broken(Honest):
        def score_part(self, exam: Exam, part: Part, matrix: ResponseMatrix) -> list[PartResult]:
            raise ZeroDivisionError("oops")

    with pytest.raises(PluginError, match="score_part raised ZeroDivisionError") as raised:
        scored(Broken())
    assert raised.value.plugin == "fake-plugin-0"
    assert isinstance(raised.value.__cause__, ZeroDivisionError)


def test_a_name_registered_twice_names_both_plugins() -> None:
    with pytest.raises(PluginError) as raised:
        registry_with(Honest(), Honest())
    assert raised.value.plugin == "fake-plugin-1"
    assert "already registered by 'fake-plugin-0'" in str(raised.value)


@pytest.mark.parametrize(
    ("registered", "message"),
    [
        ("not a scheme", "which is not a Scheme"),
        (type("Nameless", (Honest,), {"name": ""})(), "without a name"),
    ],
)
def test_registering_something_else_is_refused(registered: object, message: str) -> None:
    manager = create_plugin_manager(builtins=(), entry_points=False)
    manager.register(_plugin_for(registered), name="odd")
    with pytest.raises(PluginError, match=message):
        SchemeRegistry(manager)


def test_an_unknown_scheme_is_a_configuration_error_listing_the_known() -> None:
    with pytest.raises(
        ConfigError, match=r"no plugin registers a scheme named 'nope' \(registered: honest\)"
    ):
        registry_with(Honest()).scheme("nope")


# --- every other hook: defaults work, nonsense is refused --------------------------------------


def test_the_base_class_defaults_answer_every_hook() -> None:
    scheme = registry_with(Honest()).scheme("honest")
    exam = exam_for(Honest())
    results = scheme.score_part(exam, PART, matrix())
    combined = scheme.combine(exam, {r.candidate_id: {"main": r} for r in results})
    assert [(c.candidate_id, c.score, c.outcome) for c in combined] == [
        ("c000", 0.0, Outcome.SCORED),
        ("c001", 1.0, Outcome.SCORED),
    ]
    people = {c: Candidate(c, "x", c, "s1") for c in ("c000", "c001")}
    assert scheme.rank(exam, combined, people) == []
    assert scheme.result_terms(exam, results[0], 1e9) == ResultTerms()
    assert scheme.admit(exam, people["c000"], None, [], 1e9).admitted
    assert scheme.appeal_policy(exam) is None
    assert scheme.document_kinds(exam) == []
    assert scheme.part_specs() == [] and scheme.check_exam(exam) == []
    assert scheme.absent(exam, PART, "c000", "no-show").outcome is Outcome.ABSENT
    assert scheme.annulled(exam, PART, "c000", "phone").outcome is Outcome.ANNULLED


def test_the_default_combine_takes_the_worst_outcome_and_marks_missing_parts() -> None:
    other = part_of("second", BANK, "act")
    exam = exam_of("honest", [PART, other])
    scheme = registry_with(Honest()).scheme("honest")
    passed = PartResult("c1", "main", 3, 6, Outcome.PASS)
    failed = PartResult("c1", "second", 2, 6, Outcome.FAIL, ("too few",))
    combined = scheme.combine(
        exam, {"c1": {"main": passed, "second": failed}, "c2": {"main": passed}}
    )
    assert [(c.outcome, c.score, c.max_score) for c in combined] == [
        (Outcome.FAIL, 5.0, 12.0),
        (Outcome.INCOMPLETE, 3.0, 12.0),
    ]


class Override(Honest):
    """Honest, with one hook replaced by `answer` (a function of the hook's arguments)."""

    def __init__(self, hook: str, answer: Callable[..., object]) -> None:
        setattr(self, hook, answer)


def _call(hook: str, answer: Callable[..., object]) -> object:
    scheme = registry_with(Override(hook, answer)).scheme("honest")
    exam = exam_for(Honest())
    people = {"c000": Candidate("c000", "x", "C", "s1"), "c001": Candidate("c001", "x", "D", "s1")}
    results = [ExamResult("c000", 1, 6, Outcome.SCORED), ExamResult("c001", 2, 6, Outcome.SCORED)]
    part_result = PartResult("c000", "main", 1, 6, Outcome.SCORED)
    calls: dict[str, Callable[[], object]] = {
        "combine": lambda: scheme.combine(exam, {"c000": {"main": part_result}}),
        "rank": lambda: scheme.rank(exam, results, people),
        "result_terms": lambda: scheme.result_terms(exam, part_result, 1.7e9),
        "admit": lambda: scheme.admit(exam, people["c000"], None, [], 1.7e9),
        "appeal_policy": lambda: scheme.appeal_policy(exam),
        "document_kinds": lambda: scheme.document_kinds(exam),
        "part_specs": lambda: scheme.part_specs(),
        "check_exam": lambda: scheme.check_exam(exam),
        "annulled": lambda: scheme.annulled(exam, PART, "c000", "x"),
        "absent": lambda: scheme.absent(exam, PART, "c000", "x"),
    }
    return calls[hook]()


def _rating(
    *entries: tuple[int, str], unranked: tuple[tuple[str, str], ...] = ()
) -> list[RatingList]:
    return [RatingList("o", tuple(RatingEntry(p, c, 1.0) for p, c in entries), unranked)]


@pytest.mark.parametrize(
    ("hook", "answer", "message"),
    [
        ("combine", lambda e, r: [], "missing ['c000']"),
        ("combine", lambda e, r: [ExamResult("c000", 9, 6, Outcome.SCORED)], "outside 0..6"),
        (
            "combine",
            lambda e, r: [ExamResult("c000", 1, 6, Outcome.SCORED, {"main": math.nan})],
            "part score main=nan",
        ),
        (
            "rank",
            lambda e, r, c: _rating((1, "c000"), (2, "ghost")),
            "unknown candidates ['ghost']",
        ),
        ("rank", lambda e, r, c: _rating((1, "c000"), (2, "c000")), "more than once: ['c000']"),
        ("rank", lambda e, r, c: _rating((1, "c000"), unranked=(("c000", "x"),)), "more than once"),
        ("rank", lambda e, r, c: _rating((2, "c000"), (1, "c001")), "position 2 at place 1"),
        ("rank", lambda e, r, c: _rating((0, "c000")), "position 0 at place 1"),
        ("rank", lambda e, r, c: "first c000", "must return a list of RatingList"),
        ("result_terms", lambda e, r, t: {"valid": "2027-01-01"}, "must return ResultTerms"),
        (
            "result_terms",
            lambda e, r, t: ResultTerms(retake_from=datetime.date(1999, 1, 1)),
            "before the sitting closed",
        ),
        ("admit", lambda e, c, p, h, n: AdmissionDecision(False), "must name its rule"),
        ("admit", lambda e, c, p, h, n: True, "must return an AdmissionDecision"),
        ("appeal_policy", lambda e: AppealPolicy("R", "UTC", quorum=(3, 2)), "impossible quorum"),
        ("appeal_policy", lambda e: "yes", "AppealPolicy or None"),
        ("document_kinds", lambda e: [DocumentKind("a", "A"), DocumentKind("a", "B")], "repeat"),
        ("document_kinds", lambda e: ["sheet"], "DocumentKind values"),
        ("part_specs", lambda: ["main"], "PartSpec values"),
        ("check_exam", lambda e: "all fine", "list of strings"),
        (
            "annulled",
            lambda e, p, c, r: PartResult(c, p.id, 1, 6, Outcome.PASS),
            "annulled returned outcome 'pass'",
        ),
        ("absent", lambda e, p, c, r: PartResult(c, p.id, 7, 6, Outcome.ABSENT), "outside 0..6"),
        ("admit", lambda e, c, p, h, n: 1 / 0, "admit raised ZeroDivisionError"),
    ],
)
def test_every_hook_refuses_nonsense_naming_the_plugin(
    hook: str, answer: Callable[..., object], message: str
) -> None:
    with pytest.raises(PluginError) as raised:
        _call(hook, answer)
    assert raised.value.plugin == "fake-plugin-0"
    assert message in str(raised.value)


class WithDocuments(Honest):
    def __init__(self, build: Callable[[str], list[Document]]) -> None:
        self.build = build

    def document_kinds(self, exam: Exam) -> Sequence[DocumentKind]:
        return [DocumentKind("sheet", "Sheet")]

    def build_documents(self, exam: Exam, kind: str, book: ResultsBook) -> list[Document]:
        return self.build(kind)


def _documents(build: Callable[[str], list[Document]], kind: str = "sheet") -> list[Document]:
    scheme = WithDocuments(build)
    exam = exam_for(scheme)
    book = ResultsBook(exam, {}, {}, {}, 0.0)
    return registry_with(scheme).scheme("honest").build_documents(exam, kind, book)


def _document(kind: str, name: str = "one") -> Document:
    return Document(kind, name, "ru", "T")


def test_documents_are_built_through_the_guard() -> None:
    (document,) = _documents(lambda kind: [_document(kind)])
    assert (document.kind, document.name) == ("sheet", "one")


@pytest.mark.parametrize(
    ("build", "kind", "message"),
    [
        (lambda kind: [_document(kind)], "act", "produces no 'act' documents (it produces: sheet)"),
        (lambda kind: [_document("act")], "sheet", "returned a 'act' document"),
        (lambda kind: [_document(kind), _document(kind)], "sheet", "share a file name"),
        (lambda kind: ["<html>"], "sheet", "list of Document"),
    ],
)
def test_bad_documents_are_refused(
    build: Callable[[str], list[Any]], kind: str, message: str
) -> None:
    with pytest.raises(PluginError, match=re.escape(message)):
        _documents(build, kind)


# --- loading plugins ---------------------------------------------------------------------------


def test_a_plugin_whose_registration_raises_is_named() -> None:
    class Exploding:
        @hookimpl
        def examhall_register_schemes(self, register: Callable[[object], None]) -> None:
            raise RuntimeError("no config")

    manager = create_plugin_manager(builtins=(), entry_points=False)
    manager.register(Exploding(), name="exploding")
    with pytest.raises(PluginError, match="failed to register its schemes: RuntimeError") as raised:
        SchemeRegistry(manager)
    assert raised.value.plugin == "exploding"


def test_an_entry_point_that_cannot_be_imported_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = importlib.metadata.EntryPoint("acme", "acme_missing_module_xyz", "examhall")

    def entry_points(**selection: str) -> list[importlib.metadata.EntryPoint]:
        return [broken] if selection.get("group") == "examhall" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    manager = create_plugin_manager(builtins=(), entry_points=False)
    with pytest.raises(PluginError, match="cannot be imported") as raised:
        load_entry_points(manager)
    assert raised.value.plugin.startswith("acme")


def test_an_entry_point_with_a_misspelt_hook_argument_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import types

    module = types.ModuleType("acme_bad_hooks")

    @hookimpl
    def examhall_register_schemes(registr: Callable[[Scheme], None]) -> None:  # the typo
        registr(Honest())

    module.examhall_register_schemes = examhall_register_schemes  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "acme_bad_hooks", module)
    entry = importlib.metadata.EntryPoint("acme-bad", "acme_bad_hooks", "examhall")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **s: [entry])
    manager = create_plugin_manager(builtins=(), entry_points=False)
    with pytest.raises(PluginError, match="does not fit the hook specs"):
        load_entry_points(manager)


def test_built_ins_register_like_any_plugin() -> None:
    registry = SchemeRegistry(create_plugin_manager(entry_points=False))
    assert registry.names() == ["kz-prosecutor", "ua-prosecutor"]
    assert registry.plugin_of("kz-prosecutor") == "plugins.kz_prosecutor"


def test_part_specs_report_each_departure_with_its_rule() -> None:
    spec = PartSpec(
        "main", items=10, max_time_limit_s=60, dimension="topic", required_values=("z",), rule="R-1"
    )
    problems = spec.problems(PART)
    assert problems == [
        "part 'main' has 6 items, the rules say 10 (R-1)",
        "part 'main' lasts 90 min, the rules allow 1 min (R-1)",
        "part 'main' draws by 'act', the scheme needs 'topic' (R-1)",
        "part 'main' draws no items tagged z (R-1)",
    ]


def test_the_exam_check_names_a_missing_part() -> None:
    class NeedsTwo(Honest):
        def part_specs(self) -> Sequence[PartSpec]:
            return [PartSpec("main"), PartSpec("second")]

    problems = registry_with(NeedsTwo()).scheme("honest").check_exam(exam_for(NeedsTwo()))
    assert problems == ["the scheme needs a part 'second'; the exam has none"]
