"""The KZ scheme at every boundary of its rules (KZ-5 … KZ-9)."""

from __future__ import annotations

import datetime
from collections.abc import Mapping

import pytest

from engine.book import ResultsBook, SittingRecord
from engine.exceptions import PluginError
from engine.model import Candidate
from engine.plugins import SchemeRegistry, create_plugin_manager
from engine.schemes import AdmissionDecision, Outcome, PartResult, PastSitting
from plugins.kz_prosecutor import KzProsecutorScheme
from tests.matrices import answering, bank_of, exam_of, part_of
from tests.results_world import ALMATY, fictional_iin, local

ACTS_120 = {
    "prosecutor-office": 30,
    "anti-corruption": 30,
    "ethics-code": 20,
    "constitution": 20,
    "criminal-procedure": 20,
}


@pytest.fixture
def registry() -> SchemeRegistry:
    return SchemeRegistry(create_plugin_manager(entry_points=False))


def score(
    counts: dict[str, int], rows: list[dict[str, int]], registry: SchemeRegistry
) -> list[PartResult]:
    bank = bank_of("act", counts)
    part = part_of("legislation", bank, "act")
    exam = exam_of("kz-prosecutor", [part])
    return registry.score_part(exam, part, answering(bank, "act", rows))


def test_84_of_120_passes_and_83_fails_by_one(registry: SchemeRegistry) -> None:
    at_threshold = {"prosecutor-office": 21, "anti-corruption": 21, "ethics-code": 14}
    passing = {**at_threshold, "constitution": 14, "criminal-procedure": 14}
    failing = {**at_threshold, "constitution": 14, "criminal-procedure": 13}
    passed, failed = score(ACTS_120, [passing, failing], registry)
    assert (passed.score, passed.outcome, passed.reasons) == (84.0, Outcome.PASS, ())
    assert failed.score == 83.0 and failed.outcome is Outcome.FAIL
    assert failed.reasons == ("overall: 83 of 120 correct (69.16 %), 84 needed for 70 %: 1 short",)


def test_69_9_percent_fails_and_70_percent_passes(registry: SchemeRegistry) -> None:
    counts = {"prosecutor-office": 300, "anti-corruption": 300, "ethics-code": 200, "other": 200}
    acts = {"prosecutor-office": 210, "anti-corruption": 210, "ethics-code": 140}
    exactly_70 = {**acts, "other": 140}
    just_below = {**acts, "other": 139}
    passed, failed = score(counts, [exactly_70, just_below], registry)
    assert passed.outcome is Outcome.PASS and passed.details["percent"] == 70.0
    assert failed.outcome is Outcome.FAIL
    assert failed.details["percent"] == 69.9
    assert "699 of 1000 correct (69.90 %), 700 needed for 70 %: 1 short" in failed.reasons[0]


def test_70_percent_of_15_items_needs_11(registry: SchemeRegistry) -> None:
    counts = {"prosecutor-office": 15, "anti-corruption": 15, "ethics-code": 15, "other": 55}
    others = {"anti-corruption": 15, "ethics-code": 15, "other": 55}
    eleven, ten = score(
        counts, [{**others, "prosecutor-office": 11}, {**others, "prosecutor-office": 10}], registry
    )
    assert eleven.outcome is Outcome.PASS
    assert eleven.details["per_act"]["prosecutor-office"] == {
        "correct": 11,
        "items": 15,
        "needed": 11,
    }
    assert ten.outcome is Outcome.FAIL
    assert ten.score == 95.0, "overall 95 of 100 is far above 70 %: only the act fails"
    assert ten.reasons == (
        "prosecutor-office: 10 of 15 correct (66.66 %), 11 needed for 70 %: 1 short",
    )


def test_every_failed_threshold_is_named_with_its_shortfall(registry: SchemeRegistry) -> None:
    (result,) = score(
        ACTS_120, [{"prosecutor-office": 18, "ethics-code": 20, "constitution": 20}], registry
    )
    assert result.outcome is Outcome.FAIL
    assert [reason.split(":")[0] for reason in result.reasons] == [
        "overall",
        "prosecutor-office",
        "anti-corruption",
    ]
    assert result.reasons[0].endswith("84 needed for 70 %: 26 short")
    assert result.reasons[1].endswith("21 needed for 70 %: 3 short")
    assert result.reasons[2].endswith("21 needed for 70 %: 21 short")


def test_a_part_without_one_of_the_three_acts_is_refused_with_the_plugin_named(
    registry: SchemeRegistry,
) -> None:
    with pytest.raises(PluginError) as raised:
        score({"prosecutor-office": 10, "anti-corruption": 10, "other": 10}, [{}], registry)
    assert raised.value.plugin == "plugins.kz_prosecutor"
    assert "ethics-code" in str(raised.value)


def test_a_terminated_sitting_is_annulled(registry: SchemeRegistry) -> None:
    bank = bank_of("act", ACTS_120)
    part = part_of("legislation", bank, "act")
    exam = exam_of("kz-prosecutor", [part])
    result = registry.for_exam(exam).annulled(exam, part, "c1", "left the room")
    assert (result.outcome, result.score, result.reasons) == (
        Outcome.ANNULLED,
        0.0,
        ("left the room",),
    )


# --- validity (KZ-8) and the one-month wait (KZ-9) ---------------------------------------------


@pytest.mark.parametrize(
    ("closed", "outcome", "valid_through", "retake_from"),
    [
        ((2026, 3, 10, 14, 0), Outcome.PASS, datetime.date(2027, 3, 9), None),
        ((2026, 3, 10, 14, 0), Outcome.FAIL, datetime.date(2027, 3, 9), datetime.date(2026, 4, 10)),
        ((2026, 1, 31, 9, 0), Outcome.FAIL, datetime.date(2027, 1, 30), datetime.date(2026, 2, 28)),
        ((2028, 2, 29, 9, 0), Outcome.PASS, datetime.date(2029, 2, 27), None),
        ((2026, 3, 10, 14, 0), Outcome.ANNULLED, None, datetime.date(2026, 4, 10)),
        ((2026, 3, 10, 0, 30), Outcome.PASS, datetime.date(2027, 3, 9), None),
    ],
)
def test_result_terms_count_local_calendar_days(
    registry: SchemeRegistry,
    closed: tuple[int, ...],
    outcome: Outcome,
    valid_through: datetime.date | None,
    retake_from: datetime.date | None,
) -> None:
    bank = bank_of("act", ACTS_120)
    part = part_of("legislation", bank, "act")
    exam = exam_of("kz-prosecutor", [part])
    scheme = registry.for_exam(exam)
    result = scheme.annulled(exam, part, "c1", "x") if outcome is Outcome.ANNULLED else None
    if result is None:
        (result,) = scheme.score_part(exam, part, answering(bank, "act", [{}]))
        result = PartResult(result.candidate_id, result.part_id, 0.0, 120.0, outcome)
    terms = scheme.result_terms(exam, result, local(ALMATY, *closed))
    assert (terms.valid_through, terms.retake_from) == (valid_through, retake_from)


def _failed(on: float, outcome: Outcome = Outcome.FAIL, exam_id: str = "kz-1") -> PastSitting:
    return PastSitting(exam_id, "legislation", "c1", "submitted", on, outcome, False)


def _admit(
    history: list[PastSitting], now: float, settings: Mapping[str, object] | None = None
) -> AdmissionDecision:
    scheme = KzProsecutorScheme()
    exam = exam_of("kz-prosecutor", [], settings=settings)
    person = Candidate("c2", "x", "Тестов Тест", "s1", document=fictional_iin(5))
    return scheme.admit(exam, person, None, history, now)


def test_the_last_day_of_the_wait_is_refused_with_the_first_day_allowed() -> None:
    history = [_failed(local(ALMATY, 2026, 3, 10, 14, 0))]
    refused = _admit(history, local(ALMATY, 2026, 4, 9, 23, 59))
    assert not refused.admitted and refused.rule == "KZ-9"
    assert refused.allowed_from == datetime.date(2026, 4, 10)
    assert "from 10.04.2026" in refused.reason and "ends on 09.04.2026" in refused.reason
    assert _admit(history, local(ALMATY, 2026, 4, 10, 0, 0)).admitted


def test_a_month_from_the_31st_ends_on_the_last_day_of_a_short_month() -> None:
    history = [_failed(local(ALMATY, 2026, 1, 31, 10, 0))]
    assert not _admit(history, local(ALMATY, 2026, 2, 27, 23, 59)).admitted
    assert _admit(history, local(ALMATY, 2026, 2, 28, 0, 0)).admitted


def test_the_wait_runs_in_the_exams_time_zone() -> None:
    history = [_failed(local(ALMATY, 2026, 3, 10, 14, 0))]
    almaty_midnight = local(ALMATY, 2026, 4, 10, 0, 0)
    assert _admit(history, almaty_midnight).admitted
    in_kyiv = {"timezone": "Europe/Kyiv"}
    assert not _admit(history, almaty_midnight, in_kyiv).admitted, "still 9 April in Kyiv"


def test_the_latest_failure_counts_and_a_pass_imposes_no_wait() -> None:
    old, new = local(ALMATY, 2026, 1, 5, 9, 0), local(ALMATY, 2026, 3, 10, 9, 0)
    now = local(ALMATY, 2026, 3, 20, 9, 0)
    assert not _admit([_failed(old), _failed(new)], now).admitted
    assert _admit([_failed(new, Outcome.PASS)], now).admitted
    annulled = _admit([_failed(new, Outcome.ANNULLED)], now)
    assert not annulled.admitted and "annulled" in annulled.reason


def test_the_scheme_checks_an_exam_against_the_rules_numbers(registry: SchemeRegistry) -> None:
    scheme = registry.scheme("kz-prosecutor")
    short = exam_of(
        "kz-prosecutor", [part_of("p", bank_of("act", {"prosecutor-office": 12}), "act")]
    )
    problems = scheme.check_exam(short)
    assert any("12 items, the rules say 120" in p for p in problems)
    assert any("anti-corruption" in p and "ethics-code" in p for p in problems)
    right = exam_of("kz-prosecutor", [part_of("p", bank_of("act", ACTS_120), "act")])
    assert scheme.check_exam(right) == []


# --- the certificate ---------------------------------------------------------------------------


def _book(
    registry: SchemeRegistry, language: str, rows: list[dict[str, int]], state: str = "submitted"
) -> ResultsBook:
    bank = bank_of("act", ACTS_120)
    part = part_of("legislation", bank, "act")
    exam = exam_of("kz-prosecutor", [part])
    scheme = registry.for_exam(exam)
    closed = local(ALMATY, 2026, 3, 10, 14, 0)
    if state == "terminated":
        result = scheme.annulled(exam, part, "c000", "used a phone")
    else:
        (result,) = scheme.score_part(exam, part, answering(bank, "act", rows))
    person = Candidate("c000", "x", "Ахметов Ерлан Болатұлы", "s1", document="900101300116")
    return ResultsBook(
        exam=exam,
        candidates={"c000": person},
        sittings={
            ("c000", "legislation"): SittingRecord(
                "x/c000/legislation", "c000", "legislation", state, language, closed - 600, closed
            )
        },
        results={("c000", "legislation"): result},
        issued_at=closed,
        terms={("c000", "legislation"): scheme.result_terms(exam, result, closed).to_json()},
        tag_titles={
            "legislation": {act: {"ru": f"Закон {act}", "kk": f"Заң {act}"} for act in ACTS_120}
        },
    )


def test_a_failed_certificate_names_the_failed_act_and_the_retake_day(
    registry: SchemeRegistry,
) -> None:
    rows = [{"prosecutor-office": 20, "anti-corruption": 25, "ethics-code": 20, "constitution": 20}]
    book = _book(registry, "ru", rows)
    scheme = registry.scheme("kz-prosecutor")
    (certificate,) = scheme.build_documents(book.exam, "certificate", book)
    fields = dict(certificate.fields)
    assert certificate.language == "ru"
    assert fields["Результат"] == "тестирование не пройдено"
    assert fields["Повторное тестирование допускается с"] == "10.04.2026"
    assert fields["Результат действителен по (включительно)"] == "09.03.2027"
    rows_by_act = {row[0]: row for row in certificate.rows}
    assert rows_by_act["Закон prosecutor-office"] == (
        "Закон prosecutor-office",
        "30",
        "20",
        "21",
        "не достигнут",
    )
    assert rows_by_act["Закон anti-corruption"][-1] == "достигнут"


def test_the_certificate_speaks_the_language_of_the_sitting(registry: SchemeRegistry) -> None:
    rows = [{"prosecutor-office": 30, "anti-corruption": 30, "ethics-code": 20, "constitution": 20}]
    book = _book(registry, "kk", rows)
    (certificate,) = registry.scheme("kz-prosecutor").build_documents(
        book.exam, "certificate", book
    )
    fields = dict(certificate.fields)
    assert certificate.language == "kk"
    assert fields["Нәтиже"].startswith("тестілеуден өтті")
    assert "Қайта тестілеуге рұқсат етілетін күн" not in fields, "a pass has no retake date"


def test_an_annulled_certificate_has_no_score_table(registry: SchemeRegistry) -> None:
    book = _book(registry, "ru", [], state="terminated")
    (certificate,) = registry.scheme("kz-prosecutor").build_documents(
        book.exam, "certificate", book
    )
    assert dict(certificate.fields)["Результат"] == "результаты аннулированы: used a phone"
    assert certificate.rows == ()
