"""Both schemes against plain-Python references on random data, and the matrix they read."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from engine import scoring
from engine.exceptions import PluginError
from engine.model import Candidate, Form, FormItem
from engine.plugins import SchemeRegistry, create_plugin_manager
from engine.schemes import Outcome, PartResult
from engine.scoring import NOT_ON_FORM, UNANSWERED, ResponseMatrix, build_matrix, distinct_rows
from tests.matrices import bank_of, exam_of, part_of

ACTS = ("prosecutor-office", "anti-corruption", "ethics-code", "constitution", "other")
KZ_ACTS = ACTS[:3]


@pytest.fixture
def registry() -> SchemeRegistry:
    return SchemeRegistry(create_plugin_manager(entry_points=False))


def random_matrix(
    seed: int, counts: dict[str, int], dimension: str, rows: int, per_tag: int
) -> ResponseMatrix:
    """Random forms (`per_tag` random items of each tag) and random choices, blanks included."""
    rng = np.random.default_rng(seed)
    bank = bank_of(dimension, counts)
    labels = np.array([item.tags[dimension] for item in bank.items], dtype=np.str_)
    keys = np.array([item.key for item in bank.items], dtype=np.int16)
    choices = np.full((rows, len(bank.items)), NOT_ON_FORM, dtype=np.int16)
    for r in range(rows):
        for value in counts:
            columns = np.flatnonzero(labels == value)
            on_form = rng.choice(columns, size=per_tag, replace=False)
            choices[r, on_form] = rng.integers(UNANSWERED, 4, size=len(on_form))
            right = on_form[rng.random(len(on_form)) < rng.random()]
            choices[r, right] = keys[right]
    ids = tuple(f"c{r:03d}" for r in range(rows))
    return ResponseMatrix(ids, tuple(i.id for i in bank.items), choices, keys, {dimension: labels})


def kz_reference(
    matrix: ResponseMatrix, total: int
) -> list[tuple[float, str, dict[str, tuple[int, int]]]]:
    """Plain loops and Fractions: (score, outcome, {act: (correct, items)}) per row."""
    out = []
    labels = list(matrix.tags["act"])
    for r in range(len(matrix.candidate_ids)):
        correct = 0
        per_act = {act: [0, 0] for act in KZ_ACTS}
        for j, choice in enumerate(matrix.choices[r].tolist()):
            right = choice == int(matrix.keys[j])
            correct += right
            if labels[j] in per_act and choice != NOT_ON_FORM:
                per_act[labels[j]][0] += right
                per_act[labels[j]][1] += 1
        ok = Fraction(correct, total) >= Fraction(70, 100) and all(
            Fraction(c, n) >= Fraction(7, 10) for c, n in per_act.values()
        )
        out.append(
            (float(correct), "pass" if ok else "fail", {a: (c, n) for a, (c, n) in per_act.items()})
        )
    return out


@pytest.mark.parametrize("seed", range(8))
def test_kz_scoring_matches_the_reference_on_random_forms(
    registry: SchemeRegistry, seed: int
) -> None:
    counts = dict.fromkeys(ACTS, 12)
    matrix = random_matrix(seed, counts, "act", 60, per_tag=8)
    part = part_of("legislation", bank_of("act", counts), "act", per_tag=8)
    total = part.blueprint.total
    exam = exam_of("kz-prosecutor", [part])
    results = registry.score_part(exam, part, matrix)
    expected = kz_reference(matrix, total)
    assert [r.candidate_id for r in results] == list(matrix.candidate_ids)
    for result, (score, outcome, per_act) in zip(results, expected, strict=True):
        assert (result.score, result.outcome.value) == (score, outcome)
        got = {a: (v["correct"], v["items"]) for a, v in result.details["per_act"].items()}
        assert got == per_act
        assert (result.outcome is Outcome.PASS) == (result.reasons == ())


def kz_reasons(right: int, total: int, per_act: dict[str, tuple[int, int]]) -> tuple[str, ...]:
    """The shortfall texts the rules ask for, from Fractions."""
    reasons = []
    for what, (got, items) in {"overall": (right, total), **per_act}.items():
        needed = math.ceil(Fraction(7, 10) * items)
        if got < needed:
            shown = math.floor(Fraction(got * 100, items) * 100) / 100
            reasons.append(
                f"{what}: {got} of {items} correct ({shown:.2f} %), "
                f"{needed} needed for 70 %: {needed - got} short"
            )
    return tuple(reasons)


@pytest.mark.parametrize("seed", range(4))
def test_kz_results_match_the_reference_word_for_word_with_items_scattered(
    registry: SchemeRegistry, seed: int
) -> None:
    """Columns of one act spread over the bank, and many rows with equal counts."""
    counts = dict.fromkeys(ACTS, 9)
    ordered = random_matrix(seed, counts, "act", 300, per_tag=3)
    scattered = np.random.default_rng(seed).permutation(len(ordered.item_ids))
    matrix = ResponseMatrix(
        ordered.candidate_ids,
        tuple(ordered.item_ids[j] for j in scattered),
        np.ascontiguousarray(ordered.choices[:, scattered]),
        ordered.keys[scattered],
        {"act": ordered.tags["act"][scattered]},
    )
    part = part_of("legislation", bank_of("act", counts), "act", per_tag=3)
    total = part.blueprint.total
    results = registry.score_part(exam_of("kz-prosecutor", [part]), part, matrix)
    expected = kz_reference(matrix, total)
    assert [r.candidate_id for r in results] == list(matrix.candidate_ids)
    for result, (score, outcome, per_act) in zip(results, expected, strict=True):
        assert result.to_json() == {
            "candidate": result.candidate_id,
            "part": "legislation",
            "score": score,
            "max_score": float(total),
            "outcome": outcome,
            "reasons": list(kz_reasons(int(score), total, per_act)),
            "details": {
                "correct": int(score),
                "items": total,
                "needed": math.ceil(Fraction(7, 10) * total),
                "percent": math.floor(Fraction(int(score) * 100, total) * 100) / 100,
                "per_act": {
                    act: {"correct": c, "items": n, "needed": math.ceil(Fraction(7, 10) * n)}
                    for act, (c, n) in per_act.items()
                },
            },
        }


def test_kz_names_the_first_form_without_items_of_an_act(registry: SchemeRegistry) -> None:
    counts = dict.fromkeys(KZ_ACTS, 2)
    matrix = random_matrix(1, counts, "act", 6, per_tag=2)
    labels = matrix.tags["act"]
    matrix.choices[4, labels == "prosecutor-office"] = NOT_ON_FORM
    matrix.choices[2, labels == "ethics-code"] = NOT_ON_FORM
    matrix.choices[2, labels == "anti-corruption"] = NOT_ON_FORM
    part = part_of("legislation", bank_of("act", counts), "act")
    with pytest.raises(PluginError, match="c002's form has no items of anti-corruption"):
        registry.score_part(exam_of("kz-prosecutor", [part]), part, matrix)


def ua_reference(matrix: ResponseMatrix) -> list[tuple[int, dict[str, int]]]:
    out = []
    labels = list(matrix.tags["category"])
    for r in range(len(matrix.candidate_ids)):
        by: dict[str, int] = {}
        for j, choice in enumerate(matrix.choices[r].tolist()):
            if choice == int(matrix.keys[j]):
                by[labels[j]] = by.get(labels[j], 0) + 1
        out.append((sum(by.values()), by))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_ua_scoring_combining_and_ranking_match_the_reference(
    registry: SchemeRegistry, seed: int
) -> None:
    counts = {"logical": 15, "verbal": 15, "numerical": 15}
    matrix = random_matrix(seed + 100, counts, "category", 50, per_tag=10)
    aptitude = part_of("aptitude", bank_of("category", counts), "category", 60, per_tag=10)
    professional = part_of("professional", bank_of("topic", {"law": 100}), "topic")
    exam = exam_of("ua-prosecutor", [professional, aptitude])
    scheme = registry.for_exam(exam)
    results = scheme.score_part(exam, aptitude, matrix)
    reference = ua_reference(matrix)
    for result, (score, by) in zip(results, reference, strict=True):
        assert result.score == score
        assert {
            k: v["correct"] for k, v in result.details["by_category"].items() if v["correct"]
        } == by
    rng = np.random.default_rng(seed)
    professional_scores = rng.integers(40, 100, size=len(results)).tolist()
    combined = scheme.combine(
        exam,
        {
            r.candidate_id: {
                "professional": PartResult(
                    r.candidate_id, "professional", p, 100.0, Outcome.SCORED
                ),
                "aptitude": r,
            }
            for r, p in zip(results, professional_scores, strict=True)
        },
    )
    exact = {
        r.candidate_id: (Fraction(p) + Fraction(100 * int(r.score), 30), p)
        for r, p in zip(results, professional_scores, strict=True)
    }
    for total in combined:
        assert total.score == round(float(exact[total.candidate_id][0]), 2)
    people = {c: _person(c) for c in exact}
    (rating,) = scheme.rank(exam, combined, people)
    order = sorted(exact, key=lambda c: (-exact[c][0], -exact[c][1], c))
    assert [e.candidate_id for e in rating.entries] == order
    for place, entry in enumerate(rating.entries, start=1):
        first_equal = next(
            i for i, c in enumerate(order, start=1) if exact[c] == exact[entry.candidate_id]
        )
        assert entry.position == first_equal <= place


def _person(candidate_id: str) -> Candidate:
    return Candidate(candidate_id, "x", candidate_id, "s1", "office")


def test_build_matrix_places_each_answer_under_its_item() -> None:
    bank = bank_of("act", {"a": 3, "b": 2})
    ids = [item.id for item in bank.items]
    form = Form("x", "c1", "p", tuple(FormItem(i, (0, 1, 2, 3)) for i in (ids[4], ids[0], ids[2])))
    matrix = build_matrix(bank, [(form, {ids[4]: 3, ids[0]: None})])
    assert matrix.choices.tolist() == [[UNANSWERED, NOT_ON_FORM, UNANSWERED, NOT_ON_FORM, 3]]
    assert matrix.form_lengths.tolist() == [3]


def test_build_matrix_names_the_candidate_and_item_it_cannot_place() -> None:
    bank = bank_of("act", {"a": 2})
    stranger = Form("x", "c7", "p", (FormItem("nope", ()),))
    with pytest.raises(ValueError, match="c7: item 'nope' is not in bank"):
        build_matrix(bank, [(stranger, {})])
    item = bank.items[0].id
    with pytest.raises(ValueError, match=f"c7: item '{item}' has options 0..3, not 4"):
        build_matrix(bank, [(Form("x", "c7", "p", (FormItem(item, ()),)), {item: 4})])


def masked_group_counts(
    matrix: ResponseMatrix, dimension: str
) -> dict[str, tuple[list[int], list[int]]]:
    """Plain loops: per tag value, (correct, on the form) per row."""
    labels = matrix.tags[dimension].tolist()
    keys = matrix.keys.tolist()
    rows = matrix.choices.tolist()
    out: dict[str, tuple[list[int], list[int]]] = {}
    for value in sorted(set(labels)):
        columns = [j for j, label in enumerate(labels) if label == value]
        out[value] = (
            [sum(row[j] == keys[j] for j in columns) for row in rows],
            [sum(row[j] != NOT_ON_FORM for j in columns) for row in rows],
        )
    return out


@pytest.mark.parametrize("layout", ["grouped", "reversed", "scattered"])
@pytest.mark.parametrize("block_cells", [scoring._BLOCK_CELLS, 50])
def test_group_counts_match_plain_loops_however_the_items_lie(
    monkeypatch: pytest.MonkeyPatch, layout: str, block_cells: int
) -> None:
    """With 50 cells a block is 2 rows of 25 items: many blocks, the last one short."""
    monkeypatch.setattr(scoring, "_BLOCK_CELLS", block_cells)
    matrix = random_matrix(3, {"b": 10, "a": 8, "c": 7}, "t", 21, per_tag=5)
    columns = {
        "grouped": np.arange(25),
        "reversed": np.arange(25)[::-1],
        "scattered": np.random.default_rng(3).permutation(25),
    }[layout]
    laid_out = ResponseMatrix(
        matrix.candidate_ids,
        tuple(matrix.item_ids[j] for j in columns),
        np.ascontiguousarray(matrix.choices[:, columns]),
        matrix.keys[columns],
        {"t": matrix.tags["t"][columns]},
    )
    groups = laid_out.group_counts("t")
    assert list(groups) == ["a", "b", "c"]
    assert all(a.dtype == b.dtype == np.int64 for a, b in groups.values())
    assert {v: (a.tolist(), b.tolist()) for v, (a, b) in groups.items()} == masked_group_counts(
        laid_out, "t"
    )


def test_group_counts_of_no_rows_and_of_no_items() -> None:
    matrix = random_matrix(0, {"a": 3, "b": 2}, "t", 0, per_tag=1)
    groups = matrix.group_counts("t")
    assert {v: (a.shape, b.shape) for v, (a, b) in groups.items()} == {
        "a": ((0,), (0,)),
        "b": ((0,), (0,)),
    }
    no_items = np.zeros((1, 0), np.int16)
    bare = ResponseMatrix(("c",), (), no_items, no_items[0], {"t": np.array([], np.str_)})
    assert bare.group_counts("t") == {}


@pytest.mark.parametrize("high", [1, 4, 2**40])
def test_distinct_rows_is_numpys_unique_by_rows(high: int) -> None:
    """2**40 in 3 columns does not pack into 63 bits: the fallback must agree too."""
    counts = np.random.default_rng(high).integers(0, high + 1, size=(500, 3), dtype=np.int64)
    counts[::7] = counts[0]
    distinct, inverse = distinct_rows(counts)
    expected, expected_inverse = np.unique(counts, axis=0, return_inverse=True)
    assert np.array_equal(distinct, expected)
    assert np.array_equal(inverse, expected_inverse.reshape(-1))
    assert np.array_equal(distinct[inverse], counts)
    none, no_inverse = distinct_rows(counts[:0])
    assert none.shape == (0, 3) and no_inverse.shape == (0,)
