"""Item analysis against plain-Python formulas, and the flags that point at a bad item."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from engine.analysis import analyze, report_text
from engine.model import Bank
from engine.scoring import NOT_ON_FORM, UNANSWERED, ResponseMatrix
from tests.matrices import bank_of


def simulated(
    seed: int, *, rows: int = 300, shared_form: bool, miskey: bool = False
) -> tuple[ResponseMatrix, Bank]:
    """Candidates of varying ability answer 24 items (12 per form when forms differ)."""
    bank = bank_of("act", {"a": 12, "b": 12})
    rng = np.random.default_rng(seed)
    keys = np.array([item.key for item in bank.items], dtype=np.int16)
    ability = rng.normal(size=rows)
    difficulty = np.linspace(-1.5, 1.5, len(bank.items))
    p_right = 1 / (1 + np.exp(-(ability[:, None] - difficulty[None, :]) * 1.7))
    right = rng.random((rows, len(bank.items))) < p_right
    wrong = (keys[None, :] + rng.integers(1, 4, size=right.shape)) % 4
    choices = np.where(right, keys[None, :], wrong).astype(np.int16)
    choices[rng.random(choices.shape) < 0.03] = UNANSWERED
    if miskey:
        # item 0's real answer is option (key+1): strong candidates pick it, the key says otherwise
        strong = ability > 0
        choices[strong, 0] = (keys[0] + 1) % 4
    if not shared_form:
        for r in range(rows):
            for block in (range(0, 12), range(12, 24)):
                off = rng.choice(list(block), size=6, replace=False)
                choices[r, off] = NOT_ON_FORM
    labels = np.array([item.tags["act"] for item in bank.items], dtype=np.str_)
    ids = tuple(f"c{r:04d}" for r in range(rows))
    return ResponseMatrix(
        ids, tuple(i.id for i in bank.items), choices, keys, {"act": labels}
    ), bank


def reference(matrix: ResponseMatrix) -> tuple[list[float], list[float], float]:
    """p-values, corrected point-biserials and KR-20 by the textbook, in plain Python."""
    rows = matrix.choices.tolist()
    keys = matrix.keys.tolist()
    n_items = len(keys)
    scores = [sum(1 for j, c in enumerate(row) if c == keys[j]) for row in rows]
    p_values, r_values = [], []
    for j in range(n_items):
        takers = [i for i, row in enumerate(rows) if row[j] != NOT_ON_FORM]
        item = [1.0 if rows[i][j] == keys[j] else 0.0 for i in takers]
        rest = [scores[i] - item[k] for k, i in enumerate(takers)]
        p_values.append(sum(item) / len(item) if item else math.nan)
        try:
            r_values.append(statistics.correlation(item, rest))
        except statistics.StatisticsError:
            r_values.append(math.nan)
    form_length = max(sum(1 for c in row if c != NOT_ON_FORM) for row in rows)
    expected_pq = statistics.fmean(
        sum(p_values[j] * (1 - p_values[j]) for j, c in enumerate(row) if c != NOT_ON_FORM)
        for row in rows
    )
    kr20 = form_length / (form_length - 1) * (1 - expected_pq / statistics.pvariance(scores))
    return p_values, r_values, kr20


@pytest.mark.parametrize(("seed", "shared_form"), [(1, True), (2, True), (3, False), (4, False)])
def test_statistics_match_the_textbook_formulas(seed: int, shared_form: bool) -> None:
    matrix, bank = simulated(seed, shared_form=shared_form)
    form_length = 24 if shared_form else 12
    result = analyze(matrix, bank, "act", form_length)
    p_values, r_values, kr20 = reference(matrix)
    assert [i.p_value for i in result.items] == pytest.approx(p_values, abs=1e-12)
    assert [i.discrimination for i in result.items] == pytest.approx(r_values, abs=1e-9)
    assert result.kr20 == pytest.approx(kr20, abs=1e-9)
    assert 0.3 < result.kr20 < 1.0, "simulated ability makes a reliable test"
    for j, item in enumerate(result.items):
        column = matrix.choices[:, j].tolist()
        assert list(item.option_counts) == [column.count(k) for k in range(4)]
        assert item.unanswered == column.count(UNANSWERED)
        assert item.takers == sum(1 for c in column if c != NOT_ON_FORM)


def test_a_miskeyed_item_is_flagged_first() -> None:
    matrix, bank = simulated(5, shared_form=True, miskey=True)
    result = analyze(matrix, bank, "act", 24)
    worst = result.flagged()[0]
    assert worst.item_id == matrix.item_ids[0]
    assert worst.discrimination < 0
    flags = " ".join(worst.flags)
    assert "negative discrimination" in flags and "possible miskey" in flags
    option = "ABCD"[(int(matrix.keys[0]) + 1) % 4]
    assert f"option {option} draws stronger candidates than the key" in flags
    text = report_text(result, "t")
    assert text.index(worst.item_id) < text.index(matrix.item_ids[1])


def test_an_option_nobody_chooses_and_an_item_nobody_saw_are_flagged() -> None:
    matrix, bank = simulated(6, shared_form=True)
    key = int(matrix.keys[3])
    unused = (key + 2) % 4
    choices = matrix.choices.copy()
    choices[choices[:, 3] == unused, 3] = (key + 1) % 4
    choices[:, 5] = NOT_ON_FORM
    edited = ResponseMatrix(
        matrix.candidate_ids, matrix.item_ids, choices, matrix.keys, matrix.tags
    )
    result = analyze(edited, bank, "act", 23)
    assert f"option {'ABCD'[unused]} never chosen" in " ".join(result.items[3].flags)
    assert result.items[5].flags == ("on no form: nothing to analyse",)
    assert math.isnan(result.items[5].p_value) and result.items[5].to_json()["p_value"] is None


def test_too_few_candidates_give_no_reliability() -> None:
    matrix, bank = simulated(7, rows=1, shared_form=True)
    assert math.isnan(analyze(matrix, bank, "act", 24).kr20)


def test_answering_at_random_flags_weakness_not_miskeys() -> None:
    """Noise must not send a developer chasing miskeys: only significant gaps are flagged."""
    bank = bank_of("act", {"a": 40, "b": 40})
    rng = np.random.default_rng(11)
    keys = np.array([item.key for item in bank.items], dtype=np.int16)
    choices = rng.integers(0, 4, size=(400, 80)).astype(np.int16)
    labels = np.array([item.tags["act"] for item in bank.items], dtype=np.str_)
    matrix = ResponseMatrix(
        tuple(f"c{r}" for r in range(400)), tuple(i.id for i in bank.items), choices, keys,
        {"act": labels},
    )  # fmt: skip
    result = analyze(matrix, bank, "act", 80)
    flags = [flag for item in result.items for flag in item.flags]
    assert sum("weak discrimination" in f for f in flags) > 60
    assert sum("negative discrimination" in f for f in flags) <= 1
    assert sum("possible miskey" in f for f in flags) <= 3
    assert abs(result.kr20) < 0.3
