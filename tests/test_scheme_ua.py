"""The UA scheme: part scores, the 200-point total, ratings with ties, admission (UA-7 … UA-17)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from engine.model import Candidate, Exam, Part
from engine.plugins import SchemeRegistry, create_plugin_manager
from engine.schemes import ExamResult, Outcome, PartResult, PastSitting, RatingEntry, RatingList
from plugins.ua_prosecutor import TIE_RULE, UaProsecutorScheme
from tests.matrices import answering, bank_of, exam_of, part_of

PROFESSIONAL = {"constitution": 40, "criminal-law": 60}
APTITUDE_90 = {"logical": 30, "verbal": 30, "numerical": 30}


@pytest.fixture
def registry() -> SchemeRegistry:
    return SchemeRegistry(create_plugin_manager(entry_points=False))


def ua_exam() -> tuple[Exam, Part, Part]:
    professional = part_of("professional", bank_of("topic", PROFESSIONAL, bank_id="p"), "topic")
    aptitude = part_of("aptitude", bank_of("category", APTITUDE_90, bank_id="a"), "category", 60)
    return exam_of("ua-prosecutor", [professional, aptitude]), professional, aptitude


def test_one_point_per_correct_item_with_sub_scores_by_category(registry: SchemeRegistry) -> None:
    exam, _, aptitude = ua_exam()
    bank = bank_of("category", APTITUDE_90, bank_id="a")
    matrix = answering(
        bank, "category", [{"logical": 20, "verbal": 25, "numerical": 22}], blanks=True
    )
    (result,) = registry.score_part(exam, aptitude, matrix)
    assert (result.score, result.max_score, result.outcome) == (67.0, 90.0, Outcome.SCORED)
    assert result.details["by_category"] == {
        "logical": {"correct": 20, "items": 30},
        "verbal": {"correct": 25, "items": 30},
        "numerical": {"correct": 22, "items": 30},
    }
    assert result.details["scaled_to_100"] == 74.44


def _part(candidate: str, part: str, score: float, maximum: float) -> PartResult:
    return PartResult(candidate, part, score, maximum, Outcome.SCORED)


def test_the_total_is_200_in_equal_halves_with_aptitude_scaled(registry: SchemeRegistry) -> None:
    exam, _, _ = ua_exam()
    results = {
        "c1": {
            "professional": _part("c1", "professional", 80, 100),
            "aptitude": _part("c1", "aptitude", 67, 90),
        },
        "c2": {
            "professional": _part("c2", "professional", 100, 100),
            "aptitude": _part("c2", "aptitude", 90, 90),
        },
    }
    c1, c2 = registry.for_exam(exam).combine(exam, results)
    assert c1.max_score == 200.0
    assert c1.score == round(80 + 6700 / 90, 2) == 154.44
    assert c1.part_scores == {"professional": 80.0, "aptitude": 74.44}
    assert Fraction(c1.details["exact_total"]) == 80 + Fraction(6700, 90)
    assert c2.score == 200.0


def test_removed_absent_and_unfinished_candidates_are_not_scored(registry: SchemeRegistry) -> None:
    exam, _, _ = ua_exam()
    removed = PartResult("r", "professional", 0, 100, Outcome.ANNULLED, ("used a phone",))
    absent = PartResult("a", "aptitude", 0, 90, Outcome.ABSENT, ("did not appear",))
    results = {
        "r": {"professional": removed},
        "a": {"professional": _part("a", "professional", 70, 100), "aptitude": absent},
        "h": {"professional": _part("h", "professional", 70, 100)},
    }
    outcomes = [r.outcome for r in registry.for_exam(exam).combine(exam, results)]
    assert outcomes == [Outcome.ANNULLED, Outcome.ABSENT, Outcome.INCOMPLETE]


def _exam_result(candidate: str, professional: int, aptitude: int, items: int = 90) -> ExamResult:
    exact = Fraction(professional) + Fraction(100 * aptitude, items)
    return ExamResult(
        candidate,
        round(float(exact), 2),
        200.0,
        Outcome.SCORED,
        {"professional": float(professional), "aptitude": round(100 * aptitude / items, 2)},
        details={
            "raw": {"professional": professional, "aptitude": aptitude},
            "items": {"professional": 100, "aptitude": items},
        },
    )


def _people(*ids: str, office: str = "Окружна прокуратура №1") -> dict[str, Candidate]:
    return {i: Candidate(i, "x", f"Кандидат {i}", "s1", office) for i in ids}


def test_the_rating_orders_by_total_then_professional_then_shares_a_place(
    registry: SchemeRegistry,
) -> None:
    exam, _, _ = ua_exam()
    results = [
        _exam_result("c-low", 60, 45),  # 110.00
        _exam_result("c-prof", 80, 27),  # 110.00, the higher professional score
        _exam_result("c-tie-b", 70, 36),  # 110.00 with professional 70 …
        _exam_result("c-tie-a", 70, 36),  # … the same again: a shared place
        _exam_result("c-top", 90, 81),  # 180.00
    ]
    (rating,) = registry.for_exam(exam).rank(
        exam, results, _people(*[r.candidate_id for r in results])
    )
    assert [(e.position, e.candidate_id, e.tied) for e in rating.entries] == [
        (1, "c-top", False),
        (2, "c-prof", False),
        (3, "c-tie-a", True),
        (3, "c-tie-b", True),
        (5, "c-low", False),
    ]
    assert rating.tie_rule == TIE_RULE


def test_totals_equal_to_the_cent_but_not_exactly_are_not_tied(registry: SchemeRegistry) -> None:
    """100·67/90 = 74.444… and 100·134/180 is the same; 74.44 (rounded) is not: compare exactly."""
    exam, _, _ = ua_exam()
    exact = _exam_result("exact", 50, 67)
    raw = {"professional": 50, "aptitude": 7444}
    items = {"professional": 100, "aptitude": 10000}
    rounded_like = ExamResult(
        "rounded", exact.score, 200.0, Outcome.SCORED, details={"raw": raw, "items": items}
    )
    (rating,) = registry.for_exam(exam).rank(
        exam, [rounded_like, exact], _people("exact", "rounded")
    )
    assert [(e.candidate_id, e.position) for e in rating.entries] == [("exact", 1), ("rounded", 2)]


def test_one_rating_list_per_local_office_with_the_unranked_named(registry: SchemeRegistry) -> None:
    exam, _, _ = ua_exam()
    people = {**_people("k1", "k2", office="Київ №1"), **_people("l1", office="Львів №2")}
    removed = ExamResult("k2", 0, 200, Outcome.ANNULLED, reasons=("used a phone",))
    ratings = registry.for_exam(exam).rank(
        exam, [_exam_result("k1", 50, 50), removed, _exam_result("l1", 60, 60)], people
    )
    assert [(r.group, [e.candidate_id for e in r.entries]) for r in ratings] == [
        ("Київ №1", ["k1"]),
        ("Львів №2", ["l1"]),
    ]
    assert ratings[0].unranked == (("k2", "annulled: used a phone"),)


def _list(*positions: int) -> RatingList:
    return RatingList(
        "o",
        tuple(
            RatingEntry(p, f"c{n}", 100 - p, tied=positions.count(p) > 1)
            for n, p in enumerate(positions)
        ),
    )


@pytest.mark.parametrize(
    ("positions", "posts", "chosen", "tied"),
    [
        ((1, 2, 3, 4), 2, ("c0", "c1"), ()),
        ((1, 2, 2, 4), 2, ("c0",), ("c1", "c2")),
        ((1, 2, 2, 4), 3, ("c0", "c1", "c2"), ()),
        ((1, 1, 1), 2, (), ("c0", "c1", "c2")),
        ((1, 2), 5, ("c0", "c1"), ()),
        ((1, 2), 0, (), ()),
    ],
)
def test_top_n_for_n_posts_names_a_tie_across_the_last_post(
    positions: tuple[int, ...], posts: int, chosen: tuple[str, ...], tied: tuple[str, ...]
) -> None:
    selection = _list(*positions).top(posts)
    assert (selection.chosen, selection.tied_at_boundary) == (chosen, tied)


def _past(part: str, state: str, same_exam: bool = True, who: str = "c1") -> PastSitting:
    return PastSitting("ua", part, who, state, 1.0, None, same_exam)


@pytest.mark.parametrize(
    ("history", "part", "rule"),
    [
        ([_past("professional", "no-show")], "aptitude", "UA-7"),
        ([_past("professional", "no-show")], None, "UA-7"),
        ([_past("professional", "terminated")], "aptitude", "UA-3"),
        ([_past("professional", "submitted", who="c1-twin")], "professional", "UA-7"),
        ([_past("professional", "submitted")], "aptitude", None),
        ([_past("professional", "no-show", same_exam=False)], "professional", None),
    ],
)
def test_no_show_is_final_removal_ends_testing_and_there_is_no_retake(
    history: list[PastSitting], part: str | None, rule: str | None
) -> None:
    exam, _, _ = ua_exam()
    person = Candidate("c1", "x", "Кандидат", "s1", "Офіс", "123456789")
    decision = UaProsecutorScheme().admit(exam, person, part, history, 2.0)
    assert decision.admitted == (rule is None)
    assert decision.rule == (rule or "")


def test_the_appeal_policy_is_ua_16(registry: SchemeRegistry) -> None:
    exam, _, _ = ua_exam()
    policy = registry.for_exam(exam).appeal_policy(exam)
    assert policy is not None
    assert (policy.days_after_result, policy.days_after_refusal, policy.decision_days) == (0, 1, 1)
    assert policy.min_group_size == 15 and policy.quorum == (2, 3)
    assert "removal" in policy.refused_subjects and policy.timezone == "Europe/Kyiv"


def test_the_demo_exams_conform_to_their_schemes(registry: SchemeRegistry) -> None:
    from engine.banks import load_banks
    from engine.exams import load_exams
    from engine.resources import bundled_banks_dir

    banks = load_banks(bundled_banks_dir())
    for setup in load_exams(bundled_banks_dir() / "exams", banks).values():
        assert registry.for_exam(setup.exam).check_exam(setup.exam) == []
    exam, _, _ = ua_exam()
    assert registry.for_exam(exam).check_exam(exam) == [], "100 items and 90 of at most 100"
