"""Item analysis of a scored part: what a test developer needs to find and fix a bad item.

Per item: difficulty (p-value: the share of those who had it on their form who got it right),
discrimination (the point-biserial correlation of the item with the *rest* of the score, so an
item is not correlated with itself), how often each option was chosen and how strong its
choosers were, and plain-language flags. Per test: KR-20 reliability.

Forms differ between candidates (UA-10), so every statistic counts only the candidates who
had the item; KR-20 uses the expected Σ p·q of a form, which is the textbook formula when all
candidates share one form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from engine.model import Bank
from engine.scoring import UNANSWERED, ResponseMatrix

HARD_P = 0.20
EASY_P = 0.95
WEAK_DISCRIMINATION = 0.20
NEGATIVE_DISCRIMINATION = -0.10
"""Below this the item works against the test; between it and 0.20 it is merely weak (noise
alone gives |r| of about 0.1 with 100 takers)."""
MISKEY_GAP_SD = 0.25
"""A distractor whose choosers outscore the key's by this many standard deviations of the rest
score is a likely miskey (a smaller gap is what chance gives)."""
SIGNIFICANT_T = 2.5
"""Negative discrimination and miskey gaps are flagged only when this many standard errors
from zero, so a test full of candidates answering at random does not flag every item."""
MIN_CHOOSERS = 5
FEW_TAKERS = 30
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True, slots=True)
class ItemStats:
    item_id: str
    tag: str
    key: int
    takers: int
    p_value: float
    """NaN when nobody had the item."""
    discrimination: float
    """Corrected point-biserial (item vs rest score); NaN when it cannot be computed."""
    option_counts: tuple[int, ...]
    unanswered: int
    option_rest_means: tuple[float, ...]
    """Mean rest score of each option's choosers (NaN when nobody chose it)."""
    flags: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "item": self.item_id,
            "tag": self.tag,
            "key": LETTERS[self.key],
            "takers": self.takers,
            "p_value": _json_number(self.p_value),
            "discrimination": _json_number(self.discrimination),
            "options": {
                LETTERS[i]: {"chosen": n, "rest_mean": _json_number(m)}
                for i, (n, m) in enumerate(
                    zip(self.option_counts, self.option_rest_means, strict=True)
                )
            },
            "unanswered": self.unanswered,
            "flags": list(self.flags),
        }


@dataclass(frozen=True, slots=True)
class Analysis:
    candidates: int
    form_length: int
    mean_score: float
    sd_score: float
    kr20: float
    items: tuple[ItemStats, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "candidates": self.candidates,
            "form_length": self.form_length,
            "mean_score": _json_number(self.mean_score),
            "sd_score": _json_number(self.sd_score),
            "kr20": _json_number(self.kr20),
            "items": [item.to_json() for item in self.items],
        }

    def flagged(self) -> list[ItemStats]:
        """Items with a flag, the most telling first (negative discrimination, miskeys)."""
        return sorted(
            (item for item in self.items if item.flags),
            key=lambda item: (_severity(item), item.item_id),
        )


def analyze(matrix: ResponseMatrix, bank: Bank, dimension: str, form_length: int) -> Analysis:
    """Item and test statistics of the candidates in `matrix` (terminated ones left out)."""
    on = matrix.on_form
    correct = (matrix.correct & on).astype(np.float64)
    scores = correct.sum(axis=1)
    rest = scores[:, np.newaxis] - correct
    takers = on.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(takers > 0, correct.sum(axis=0) / np.maximum(takers, 1), np.nan)
    discrimination, rest_sd = _point_biserial(correct, rest, on)
    width = max((item.option_count for item in bank.items), default=0)
    choices = matrix.choices
    counts = np.stack([(choices == k).sum(axis=0) for k in range(width)], axis=1)
    unanswered = (choices == UNANSWERED).sum(axis=0)
    rest_means = np.full((len(matrix.item_ids), width), np.nan)
    for k in range(width):
        chose = choices == k
        chosen = chose.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            rest_means[:, k] = np.where(
                chosen > 0, (rest * chose).sum(axis=0) / np.maximum(chosen, 1), np.nan
            )
    kr20 = _kr20(p, on, scores, form_length)
    labels = matrix.tags.get(dimension, np.array([""] * len(matrix.item_ids)))
    items = []
    for j, item_id in enumerate(matrix.item_ids):
        options = bank.by_id[item_id].option_count
        stats = ItemStats(
            item_id=item_id,
            tag=str(labels[j]),
            key=int(matrix.keys[j]),
            takers=int(takers[j]),
            p_value=float(p[j]),
            discrimination=float(discrimination[j]),
            option_counts=tuple(int(n) for n in counts[j, :options]),
            unanswered=int(unanswered[j]),
            option_rest_means=tuple(float(m) for m in rest_means[j, :options]),
            flags=(),
        )
        items.append(_with_flags(stats, float(rest_sd[j])))
    n = len(matrix.candidate_ids)
    return Analysis(
        candidates=n,
        form_length=form_length,
        mean_score=float(scores.mean()) if n else math.nan,
        sd_score=float(scores.std()) if n else math.nan,
        kr20=kr20,
        items=tuple(items),
    )


def _point_biserial(
    correct: npt.NDArray[np.float64], rest: npt.NDArray[np.float64], on: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per column, over the rows that had the item: Pearson's r of item score and rest score,
    and the standard deviation of the rest score."""
    mask = on.astype(np.float64)
    n = mask.sum(axis=0)
    x, y = correct * mask, rest * mask
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x, mean_y = x.sum(axis=0) / n, y.sum(axis=0) / n
        cov = (x * y).sum(axis=0) / n - mean_x * mean_y
        var_x = (x * x).sum(axis=0) / n - mean_x**2
        var_y = (y * y).sum(axis=0) / n - mean_y**2
        r = cov / np.sqrt(var_x * var_y)
    valid = (n >= 2) & (var_x > 1e-12) & (var_y > 1e-12)
    rest_sd = np.sqrt(np.where(n >= 2, np.maximum(var_y, 0.0), np.nan))
    return np.where(valid, r, np.nan), rest_sd


def _kr20(
    p: npt.NDArray[np.float64],
    on: npt.NDArray[np.bool_],
    scores: npt.NDArray[np.float64],
    form_length: int,
) -> float:
    """KR-20 = k/(k-1) · (1 − E[Σ p·q over a form] / var(score))."""
    if len(scores) < 2 or form_length < 2:
        return math.nan
    variance = float(scores.var())
    if variance <= 0:
        return math.nan
    pq = np.nan_to_num(p * (1 - p))
    expected_pq = float((on * pq[np.newaxis, :]).sum(axis=1).mean())
    k = form_length
    return k / (k - 1) * (1 - expected_pq / variance)


def _with_flags(item: ItemStats, rest_sd: float) -> ItemStats:
    """The item's problems in words, for the person who has to fix it."""
    flags = []
    if item.takers == 0:
        return replace(item, flags=("on no form: nothing to analyse",))
    if item.takers < FEW_TAKERS:
        flags.append(f"only {item.takers} takers: figures are unstable")
    if not math.isnan(item.discrimination):
        r, n = item.discrimination, item.takers
        t = r * math.sqrt((n - 2) / (1 - r * r)) if n > 2 and abs(r) < 1 else 0.0
        if r < NEGATIVE_DISCRIMINATION and t < -SIGNIFICANT_T:
            flags.append(
                f"negative discrimination ({item.discrimination:.2f}): stronger candidates miss "
                "it more often — check the key"
            )
        elif item.discrimination < WEAK_DISCRIMINATION:
            flags.append(f"weak discrimination ({item.discrimination:.2f})")
    if item.p_value < HARD_P:
        flags.append(f"very hard (p = {item.p_value:.2f}): check the key and the wording")
    elif item.p_value > EASY_P:
        flags.append(f"very easy (p = {item.p_value:.2f}): says little about candidates")
    key_mean = item.option_rest_means[item.key]
    key_choosers = item.option_counts[item.key]
    for option, (chosen, mean) in enumerate(
        zip(item.option_counts, item.option_rest_means, strict=True)
    ):
        if option == item.key:
            continue
        if chosen == 0:
            flags.append(f"option {LETTERS[option]} never chosen: not a plausible distractor")
        elif (
            chosen >= MIN_CHOOSERS
            and key_choosers > 0
            and not math.isnan(key_mean)
            and mean - key_mean > MISKEY_GAP_SD * rest_sd
            and mean - key_mean > SIGNIFICANT_T * rest_sd * math.sqrt(1 / chosen + 1 / key_choosers)
        ):
            flags.append(
                f"option {LETTERS[option]} draws stronger candidates than the key "
                f"(rest score {mean:.1f} vs {key_mean:.1f}): possible miskey"
            )
    return replace(item, flags=tuple(flags))


def _severity(item: ItemStats) -> int:
    text = " ".join(item.flags)
    if "negative discrimination" in text or "miskey" in text:
        return 0
    if "very hard" in text or "weak discrimination" in text:
        return 1
    return 2


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


def report_text(analysis: Analysis, title: str) -> str:
    """A plain-text report: the test's figures, then every item, flagged ones first."""
    lines = [
        title,
        f"candidates {analysis.candidates}; items per form {analysis.form_length}; "
        f"mean {analysis.mean_score:.2f}, sd {analysis.sd_score:.2f}; "
        f"KR-20 {analysis.kr20:.3f}",
        "",
        f"{'item':<16} {'tag':<18} {'n':>5} {'p':>5} {'r_pb':>6}  options (key *)  blank",
    ]
    flagged = analysis.flagged()
    rest = sorted((i for i in analysis.items if not i.flags), key=lambda i: i.item_id)
    for item in [*flagged, *rest]:
        options = " ".join(
            f"{LETTERS[k]}{'*' if k == item.key else ''}{n}"
            for k, n in enumerate(item.option_counts)
        )
        lines.append(
            f"{item.item_id:<16} {item.tag:<18} {item.takers:>5} {_fmt(item.p_value):>5} "
            f"{_fmt(item.discrimination):>6}  {options}  {item.unanswered}"
        )
        lines.extend(f"{'':<18}! {flag}" for flag in item.flags)
    return "\n".join(lines) + "\n"


def _fmt(value: float) -> str:
    return "  —" if math.isnan(value) else f"{value:.2f}"
