"""Offline figures: assembling many forms, and scoring a million candidates with the KZ rules.

Form assembly runs `engine.forms.assemble_forms` on a large synthetic bank, exactly as an
operator regenerating every form of an exam would. Scoring builds a `ResponseMatrix` directly
(a million rows through `build_matrix`'s per-candidate loop would measure Python, not the rules)
and scores it the way the server and `examhall score` do: `SchemeRegistry.score_part`, i.e. the
KZ plugin behind the engine's checks, from the matrix to one `PartResult` per candidate. The
numpy core alone (the `engine.scoring` primitives to a pass/fail array) is timed beside it, and
both are checked against `score_kz`, a computation of the rules written independently here.
"""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.catalog import KZ_COUNTS, SYNTHETIC_BANK, write_synthetic
from engine.banks import load_bank
from engine.forms import assemble_forms
from engine.model import Blueprint, Exam, Part, Site
from engine.plugins import SchemeRegistry, create_plugin_manager
from engine.schemes import Outcome, PartResult
from engine.scoring import NOT_ON_FORM, ResponseMatrix, needed_for_share, reaches_share

PASS_PERCENT = 70
THRESHOLD_ACTS = ("prosecutor-office", "anti-corruption", "ethics-code")
"""As in plugins/kz_prosecutor.py: 70 % overall and in each of these three acts."""


def _exam_and_part(bank_id: str) -> tuple[Exam, Part]:
    part = Part("legislation", {"ru": "Закон"}, bank_id, 5400, Blueprint("act", KZ_COUNTS))
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
    exam, part = _exam_and_part(bank.id)
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
    """The KZ rules over the whole matrix, written apart from the engine: the reference.

    70 % overall and 70 % in each threshold act; each act is summed over contiguous column
    slices, with one `np.take` to group the columns first when they are scattered.
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
    """The numpy core of the plugin: `group_counts` and `reaches_share` to a pass/fail array."""
    groups = matrix.group_counts("act")
    correct = np.sum([right for right, _ in groups.values()], axis=0)
    passed = reaches_share(correct, total, PASS_PERCENT)
    for act in THRESHOLD_ACTS:
        act_correct, act_items = groups[act]
        passed &= reaches_share(act_correct, act_items, PASS_PERCENT)
    return passed


def bench_group_counts(candidates: int = 1_000_000, *, seed: int = 5) -> dict[str, Any]:
    """Time the numpy core on the same matrix, and check it against the reference."""
    matrix, _ = _synthetic_matrix(candidates, np.random.default_rng(seed))
    total = sum(KZ_COUNTS.values())
    started = time.perf_counter()
    core = score_kz_with_group_counts(matrix, total)
    seconds = time.perf_counter() - started
    reference = score_kz(matrix, total)
    return {
        "candidates": candidates,
        "seconds": round(seconds, 3),
        "agrees_with_bench_path": bool(np.array_equal(core, reference)),
        "needed_per_act": {
            act: needed_for_share(KZ_COUNTS[act], PASS_PERCENT) for act in THRESHOLD_ACTS
        },
    }


def bench_scoring(candidates: int, *, seed: int = 5) -> dict[str, Any]:
    """Score a million candidates through the engine, as a re-score does, and break it down.

    `seconds` is `SchemeRegistry.score_part` from the matrix to the checked results: what
    `examhall score` and the server run. Beside it: the plugin's own `score_part` without the
    engine's checks, the numpy core, and the cyclic collector's share of the whole.
    """
    rng = np.random.default_rng(seed)
    matrix, _ = _synthetic_matrix(candidates, rng)
    total = sum(KZ_COUNTS.values())
    exam, part = _exam_and_part(SYNTHETIC_BANK)
    registry = SchemeRegistry(create_plugin_manager(entry_points=False))
    with _collector_time() as collector_s:
        started = time.perf_counter()
        results = registry.score_part(exam, part, matrix)
        seconds = time.perf_counter() - started
    reference = score_kz(matrix, total)
    correct = (matrix.choices == matrix.keys).sum(axis=1, dtype=np.int64)
    agrees = _agree(results, reference, correct)
    passed = sum(result.outcome is Outcome.PASS for result in results)
    del results
    gc.collect()
    scheme = registry.for_exam(exam).scheme
    scheme_s = _timed(lambda: scheme.score_part(exam, part, matrix))
    gc.collect()
    core_s = _timed(lambda: score_kz_with_group_counts(matrix, total))
    return {
        "candidates": candidates,
        "items_per_form": total,
        "bank_items": len(matrix.item_ids),
        "seconds": round(seconds, 3),
        "collector_s": round(collector_s(), 3),
        "scheme_only_s": round(scheme_s, 3),
        "numpy_core_s": round(core_s, 3),
        "passed": passed,
        "agrees_with_reference": agrees,
    }


def _agree(
    results: list[PartResult], passed: npt.NDArray[np.bool_], correct: npt.NDArray[np.int64]
) -> bool:
    """Each result's outcome and score are the reference's."""
    outcomes = np.fromiter((r.outcome is Outcome.PASS for r in results), bool, len(results))
    scores = np.fromiter((r.score for r in results), np.float64, len(results))
    return bool(np.array_equal(outcomes, passed) and np.array_equal(scores, correct))


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


@contextmanager
def _collector_time() -> Iterator[Callable[[], float]]:
    """Seconds the cyclic collector ran inside the block: a million new results make it walk
    a growing heap again and again."""
    total = [0.0]
    began = [0.0]

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            began[0] = time.perf_counter()
        else:
            total[0] += time.perf_counter() - began[0]

    gc.callbacks.append(watch)
    try:
        yield lambda: total[0]
    finally:
        gc.callbacks.remove(watch)
