"""Offline figures: assembling many forms, and scoring a million candidates with the KZ rules.

Form assembly runs `engine.forms.assemble_forms` on a large synthetic bank, exactly as an
operator regenerating every form of an exam would. Scoring builds a `ResponseMatrix` directly
(a million rows through `build_matrix`'s per-candidate loop would measure Python, not the rules)
and applies the KZ per-act rules with the `engine.scoring` primitives, in one process.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.catalog import KZ_COUNTS, SYNTHETIC_BANK, write_synthetic
from engine.banks import load_bank
from engine.forms import assemble_forms
from engine.model import Bank, Blueprint, Exam, Part, Site
from engine.scoring import NOT_ON_FORM, ResponseMatrix, needed_for_share, reaches_share

PASS_PERCENT = 70
THRESHOLD_ACTS = ("prosecutor-office", "anti-corruption", "ethics-code")
"""As in plugins/kz_prosecutor.py: 70 % overall and in each of these three acts."""


def _exam_and_part(bank: Bank) -> tuple[Exam, Part]:
    part = Part("legislation", {"ru": "Закон"}, bank.id, 5400, Blueprint("act", KZ_COUNTS))
    exam = Exam(
        "bench-offline",
        {"ru": "Тест"},
        "kz-prosecutor",
        ("kk", "ru"),
        (part,),
        (Site("astana", {"ru": "Астана"}),),
    )
    return exam, part


def bench_forms(count: int, *, bank_items: int = 10_000) -> dict[str, Any]:
    """Time `assemble_forms` for `count` candidates and check every form is different."""
    with tempfile.TemporaryDirectory(prefix="examhall-bench-bank-") as folder:
        bank = load_bank(write_synthetic(Path(folder), items=bank_items))
    exam, part = _exam_and_part(bank)
    secret = bytes(range(32))
    candidates = [f"{exam.id}-{n:07d}" for n in range(1, count + 1)]
    started = time.perf_counter()
    forms = assemble_forms(secret, exam, part, bank, candidates)
    seconds = time.perf_counter() - started
    unique = len({tuple(form_item.item_id for form_item in form.items) for form in forms})
    return {
        "forms": count,
        "items_per_form": part.blueprint.total,
        "bank": f"{SYNTHETIC_BANK} ({bank_items} items)",
        "seconds": round(seconds, 3),
        "forms_per_s": round(count / seconds),
        "unique": unique,
    }


def _synthetic_matrix(
    candidates: int, rng: np.random.Generator
) -> tuple[ResponseMatrix, npt.NDArray[np.int64]]:
    """A million-row response matrix over a 260-item bank (the demo bank's shape).

    Each candidate sees the blueprint's count of items per act and answers each with a chance
    of being right that varies by candidate, so pass and fail both occur.
    """
    pools = {"prosecutor-office": 64, "anti-corruption": 64, "ethics-code": 44}
    pools |= {"constitution": 44, "criminal-procedure": 44}
    labels = np.concatenate([np.full(size, act) for act, size in pools.items()]).astype(np.str_)
    items = len(labels)
    keys = rng.integers(0, 4, items, dtype=np.int16)
    choices = np.full((candidates, items), NOT_ON_FORM, dtype=np.int16)
    ability = rng.uniform(0.45, 0.95, candidates)
    first = 0
    chunk = 100_000
    for act, size in pools.items():
        count = KZ_COUNTS[act]
        for start in range(0, candidates, chunk):
            stop = min(candidates, start + chunk)
            rows = stop - start
            picked = np.argpartition(rng.random((rows, size)), count, axis=1)[:, :count] + first
            right = rng.random((rows, count)) < ability[start:stop, None]
            wrong = (keys[picked] + rng.integers(1, 4, (rows, count))) % 4
            answer = np.where(right, keys[picked], wrong).astype(np.int16)
            np.put_along_axis(choices[start:stop], picked, answer, axis=1)
        first += size
    ids = tuple(f"c{n}" for n in range(candidates))
    item_ids = tuple(f"i{n}" for n in range(items))
    return ResponseMatrix(ids, item_ids, choices, keys, {"act": labels}), ability.argsort()


def score_kz(matrix: ResponseMatrix, total: int) -> npt.NDArray[np.bool_]:
    """The KZ rules over the whole matrix: 70 % overall and 70 % in each threshold act.

    Each act is summed over contiguous column slices (a bank keeps an act's items together, as
    its files are split by topic), with one `np.take` to group the columns first when they are
    scattered — instead of one boolean-mask copy of the matrix per act, which is what
    `ResponseMatrix.group_counts` does (docs/performance.md).
    """
    labels = matrix.tags["act"]
    choices, keys = matrix.choices, matrix.keys
    runs = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    if len(runs) > 4 * len(np.unique(labels)):
        order = np.argsort(labels, kind="stable")
        choices, keys, labels = np.take(choices, order, axis=1), keys[order], labels[order]
        runs = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    correct = (choices == keys).view(np.uint8)
    on_form = (choices != NOT_ON_FORM).view(np.uint8)
    ends = [*runs[1:].tolist(), labels.size]
    act_correct: dict[str, npt.NDArray[np.int64]] = {}
    act_items: dict[str, npt.NDArray[np.int64]] = {}
    for begin, end in zip(runs.tolist(), ends, strict=True):
        act = str(labels[begin])
        right = correct[:, begin:end].sum(axis=1, dtype=np.int64)
        seen = on_form[:, begin:end].sum(axis=1, dtype=np.int64)
        act_correct[act] = act_correct[act] + right if act in act_correct else right
        act_items[act] = act_items[act] + seen if act in act_items else seen
    overall = np.sum(list(act_correct.values()), axis=0)
    passed = reaches_share(overall, total, PASS_PERCENT)
    for act in THRESHOLD_ACTS:
        passed &= reaches_share(act_correct[act], act_items[act], PASS_PERCENT)
    return np.asarray(passed)


def score_kz_with_group_counts(matrix: ResponseMatrix, total: int) -> npt.NDArray[np.bool_]:
    """The same rules through `ResponseMatrix.correct` and `group_counts`, as the plugin does."""
    correct = matrix.correct.sum(axis=1, dtype=np.int64)
    passed = reaches_share(correct, total, PASS_PERCENT)
    groups = matrix.group_counts("act")
    for act in THRESHOLD_ACTS:
        act_correct, act_items = groups[act]
        passed &= reaches_share(act_correct, act_items, PASS_PERCENT)
    return passed


def bench_group_counts(candidates: int = 1_000_000, *, seed: int = 5) -> dict[str, Any]:
    """Time the plugin's primitives on the same matrix, and check both paths agree."""
    matrix, _ = _synthetic_matrix(candidates, np.random.default_rng(seed))
    total = sum(KZ_COUNTS.values())
    started = time.perf_counter()
    slow = score_kz_with_group_counts(matrix, total)
    seconds = time.perf_counter() - started
    fast = score_kz(matrix, total)
    return {
        "candidates": candidates,
        "seconds": round(seconds, 3),
        "agrees_with_bench_path": bool(np.array_equal(slow, fast)),
        "needed_per_act": {
            act: needed_for_share(KZ_COUNTS[act], PASS_PERCENT) for act in THRESHOLD_ACTS
        },
    }


def bench_scoring(candidates: int, *, seed: int = 5) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    matrix, _ = _synthetic_matrix(candidates, rng)
    total = sum(KZ_COUNTS.values())
    started = time.perf_counter()
    passed = score_kz(matrix, total)
    seconds = time.perf_counter() - started
    return {
        "candidates": candidates,
        "items_per_form": total,
        "bank_items": len(matrix.item_ids),
        "seconds": round(seconds, 3),
        "passed": int(passed.sum()),
    }
