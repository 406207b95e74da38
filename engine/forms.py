"""Seeded, unique, blueprint-true form assembly.

A candidate's form for a part is a pure function of (exam secret, exam id, candidate id, part id)
and the bank: it can be rebuilt at any time for an appeal or an audit, it differs between
candidates (UA-10), and it cannot be predicted without the secret (under UA-4 the item list is
public, so knowing someone's form in advance would be knowing their questions).

The algorithm (version 2) — changing any step changes every form, so it is a contract:

1. ``seed = form_seed(...)``, 128 bits; its two 64-bit halves are k0 (high) and k1 (low). The
   form reads 3T uniform numbers, T the blueprint total: number i (from 0) is
   ``u_i = (splitmix64(k0, i) XOR k1 >> 11) / 2**53`` where ``splitmix64(k0, i)`` is SplitMix64's
   finaliser applied to ``k0 + (i + 1) * 0x9E3779B97F4A7C15`` (mod 2**64). A counter-based
   stream: any number of forms are drawn at once with array operations, no generator per form.
   Every later step only reads ``u``, in three blocks of T numbers.
2. Selection, block 1: for each blueprint value in sorted order, the bank items with that tag
   sorted by id form a pool of n, of which k are drawn by Floyd's algorithm: for s = 0 .. k-1,
   ``j = n - k + s`` and ``t = floor(u * (j + 1))``; take t unless it was already taken, then
   take j. Every k-subset is equally likely, and the cost does not grow with the pool.
3. Order, block 2: the k-per-value selections are concatenated and shuffled by a forward
   Fisher–Yates over all T positions, ``j = i + floor(u * (T - i))``.
4. Options, block 3: the item at position i gets the permutation of rank
   ``floor(u * m!)`` in lexicographic order of the permutations of its m options (rank 0, the
   identity, when the part does not shuffle options). Blocks are drawn either way, so switching
   option shuffling off does not change which items a candidate gets.

Version 1 (a numpy Generator seeded per form, a Fisher–Yates over each whole pool) drew the
same distribution; it was replaced because building one generator per form and shuffling whole
pools made 100,000 forms take many seconds (docs/performance.md).

`assemble_form` is the plain reference; `assemble_forms` computes the same forms for many
candidates at once with array operations.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from engine.collector import collector_paused
from engine.exceptions import ConfigError
from engine.model import Bank, Exam, Form, FormItem, Item, Part

Shuffled = TypeVar("Shuffled")

FORM_ALGORITHM = 2
MIN_SECRET_BYTES = 16
_SEED_DOMAIN = b"examhall-form-v2"
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_UNIT = 2.0**-53
_CHUNK = 4096
"""Candidates assembled together in `assemble_forms`: large enough to amortise numpy calls,
small enough that a chunk's arrays stay at a few megabytes."""


def form_seed(secret: bytes, exam_id: str, candidate_id: str, part_id: str) -> int:
    """The 128-bit seed of one form: SHA-256 over length-prefixed fields.

    Each field is preceded by its length, so ("ab", "c") and ("a", "bc") cannot collide.
    """
    return _finish_seed(_exam_hasher(secret, exam_id), candidate_id, part_id)


def _exam_hasher(secret: bytes, exam_id: str) -> hashlib._Hash:
    """The hash state after the fields every form of an exam shares (copied per candidate)."""
    hasher = hashlib.sha256(_SEED_DOMAIN)
    hasher.update(_length_prefixed(secret))
    hasher.update(_length_prefixed(exam_id.encode()))
    return hasher


def _finish_seed(exam_hasher: hashlib._Hash, candidate_id: str, part_id: str) -> int:
    return int.from_bytes(_seed_digest(exam_hasher, candidate_id, part_id), "big")


def _length_prefixed(field: bytes) -> bytes:
    return len(field).to_bytes(8, "big") + field


def _floyd(size: int, uniforms: Sequence[float]) -> list[int]:
    """Step 2 for one pool: len(uniforms) distinct indices of range(size), Floyd's algorithm."""
    count = len(uniforms)
    chosen: list[int] = []
    for step, uniform in enumerate(uniforms):
        top = size - count + step
        pick = min(int(uniform * (top + 1)), top)
        chosen.append(top if pick in chosen else pick)
    return chosen


def shown_key(form_item: FormItem, item: Item) -> int:
    """The 0-based position at which the candidate sees the correct option of `item`."""
    if form_item.item_id != item.id:
        raise ValueError(f"form item '{form_item.item_id}' is not item '{item.id}'")
    return form_item.option_order.index(item.key)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a part draws from its bank, resolved once: pools in the algorithm's order."""

    pools: tuple[tuple[tuple[Item, ...], int], ...]
    """(items of one blueprint value sorted by id, how many to draw), values sorted."""
    total: int
    option_counts: dict[str, int]
    """Options of every pool item, by id (looked up once, not per form)."""
    form_items: dict[tuple[str, int], FormItem]
    """One shared `FormItem` per (item, permutation rank) drawn so far: they are immutable, and
    a server holding 10,000 forms would otherwise keep 1.2 million of them for the collector
    to walk."""


_PLANS: dict[tuple[int, int, int], tuple[Exam, Part, Bank, _Plan]] = {}
"""Resolved plans by the identity of (exam, part, bank): the server assembles one form per
sitting it takes up, and sorting the pools each time cost more than drawing the form."""
_PLANS_KEPT = 64


def _plan(exam: Exam, part: Part, bank: Bank, secret: bytes) -> _Plan:
    """Check that the part can be drawn from this bank and list its pools."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the exam secret must be at least {MIN_SECRET_BYTES} bytes")
    key = (id(exam), id(part), id(bank))
    known = _PLANS.get(key)
    if known is not None and known[0] is exam and known[1] is part and known[2] is bank:
        return known[3]
    plan = _resolve_plan(exam, part, bank)
    if len(_PLANS) >= _PLANS_KEPT:
        _PLANS.clear()
    _PLANS[key] = (exam, part, bank, plan)  # holding them keeps their ids from being reused
    return plan


def _resolve_plan(exam: Exam, part: Part, bank: Bank) -> _Plan:
    if part.bank_id != bank.id:
        raise ConfigError(f"part '{part.id}' draws from bank '{part.bank_id}', not '{bank.id}'")
    dimension = part.blueprint.dimension
    if dimension not in bank.tags:
        raise ConfigError(f"bank '{bank.id}' has no tag dimension '{dimension}'")
    pools = []
    for value in sorted(part.blueprint.counts):
        count = part.blueprint.counts[value]
        pool = tuple(sorted(bank.items_tagged(dimension, value), key=lambda item: item.id))
        if count > len(pool):
            raise ConfigError(
                f"exam '{exam.id}' part '{part.id}' asks for {count} items with "
                f"{dimension} = '{value}'; bank '{bank.id}' has {len(pool)}"
            )
        pools.append((pool, count))
    counts = {item.id: item.option_count for pool, _ in pools for item in pool}
    return _Plan(tuple(pools), part.blueprint.total, counts, {})


def assemble_form(secret: bytes, exam: Exam, part: Part, bank: Bank, candidate_id: str) -> Form:
    """The form of one candidate for one part (the reference implementation of the algorithm)."""
    plan = _plan(exam, part, bank, secret)
    total = plan.total
    seed = form_seed(secret, exam.id, candidate_id, part.id)
    k0 = np.array([seed >> 64], dtype=np.uint64)
    k1 = np.array([seed & _MASK64], dtype=np.uint64)
    u: list[float] = _uniform_rows(k0, k1, 3 * total)[:, 0].tolist()
    chosen: list[Item] = []
    offset = 0
    for pool, count in plan.pools:
        chosen.extend(pool[index] for index in _floyd(len(pool), u[offset : offset + count]))
        offset += count
    _fisher_yates(chosen, u[total : 2 * total])
    items = []
    option_counts, shared = plan.option_counts, plan.form_items
    for position, item in enumerate(chosen):
        size = option_counts[item.id]
        rank = _rank(u[2 * total + position], size) if part.shuffle_options else 0
        form_item = shared.get((item.id, rank))
        if form_item is None:
            form_item = shared[item.id, rank] = FormItem(item.id, _permutations(size)[rank])
        items.append(form_item)
    return Form(exam.id, candidate_id, part.id, tuple(items))


def _fisher_yates(values: list[Shuffled], uniforms: Sequence[float]) -> None:
    """Forward Fisher–Yates on the first len(uniforms) positions, in place."""
    size = len(values)
    for i, uniform in enumerate(uniforms):
        j = i + min(int(uniform * (size - i)), size - i - 1)
        values[i], values[j] = values[j], values[i]


def _rank(uniform: float, size: int) -> int:
    count = _FACTORIALS[size]
    return min(int(uniform * count), count - 1)


_FACTORIALS = [math.factorial(size) for size in range(9)]


@functools.cache
def _permutations(size: int) -> list[tuple[int, ...]]:
    """Every permutation of range(size), in lexicographic order (so rank r is entry r)."""
    return list(itertools.permutations(range(size)))


# --- many candidates at once ---------------------------------------------------------------------


def assemble_forms(
    secret: bytes, exam: Exam, part: Part, bank: Bank, candidate_ids: Sequence[str]
) -> list[Form]:
    """The forms of many candidates for one part; equal to `assemble_form` for each of them.

    The streams of a chunk of candidates are computed together (the stream is counter-based),
    every step runs as array operations over the chunk, and the immutable `FormItem`s are
    shared between forms instead of being made 120 times per form. Arrays are laid out
    position-major (one row per form position, one column per candidate) so that every step
    reads and writes contiguous rows.
    """
    plan = _plan(exam, part, bank, secret)
    total = plan.total
    pool_items = [item for pool, _ in plan.pools for item in pool]
    option_counts = np.array([item.option_count for item in pool_items], dtype=np.int64)
    form_items = _FormItemCache(pool_items)
    exam_hasher = _exam_hasher(secret, exam.id)
    forms: list[Form] = []
    with collector_paused():
        for start in range(0, len(candidate_ids), _CHUNK):
            chunk = candidate_ids[start : start + _CHUNK]
            digests = b"".join(
                _seed_digest(exam_hasher, candidate_id, part.id) for candidate_id in chunk
            )
            keys = np.frombuffer(digests, dtype=">u8").astype(np.uint64).reshape(len(chunk), 2)
            uniforms = _uniform_rows(keys[:, 0], keys[:, 1], 3 * total)
            order = _select(plan, uniforms[:total])
            _fisher_yates_columns(order, uniforms[total : 2 * total])
            if part.shuffle_options:
                ranks = _ranks(uniforms[2 * total :], option_counts[order])
            else:
                ranks = np.zeros_like(order)
            items_by_form = form_items.tuples((form_items.first_codes[order] + ranks).T)
            forms.extend(map(Form, repeat(exam.id), chunk, repeat(part.id), items_by_form))
    return forms


def _seed_digest(exam_hasher: hashlib._Hash, candidate_id: str, part_id: str) -> bytes:
    """The 16 bytes `form_seed` reads as its number (big-endian)."""
    hasher = exam_hasher.copy()
    hasher.update(_length_prefixed(candidate_id.encode()))
    hasher.update(_length_prefixed(part_id.encode()))
    return hasher.digest()[:16]


def _uniform_rows(
    k0: npt.NDArray[np.uint64], k1: npt.NDArray[np.uint64], count: int
) -> npt.NDArray[np.float64]:
    """Step 1 for a chunk of forms: (count × forms), row i holding number i of every form."""
    counters = np.arange(1, count + 1, dtype=np.uint64)[:, np.newaxis]
    z = k0[np.newaxis, :] + counters * np.uint64(_GOLDEN)
    z ^= z >> np.uint64(30)
    z *= np.uint64(_MIX1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(_MIX2)
    z ^= z >> np.uint64(31)
    z ^= k1[np.newaxis, :]
    z >>= np.uint64(11)
    return z.astype(np.float64) * _UNIT


def _select(plan: _Plan, uniforms: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Block 1 for a chunk: each form's chosen items as indices into the concatenated pools."""
    forms = uniforms.shape[1]
    chosen = np.empty((plan.total, forms), dtype=np.int64)
    offset = 0
    base = 0
    for pool, count in plan.pools:
        size = len(pool)
        for step in range(count):
            top = size - count + step
            pick = np.minimum((uniforms[offset + step] * (top + 1)).astype(np.int64), top)
            if step:
                taken = (chosen[offset : offset + step] == pick).any(axis=0)
                pick = np.where(taken, top, pick)
            chosen[offset + step] = pick
        chosen[offset : offset + count] += base
        offset += count
        base += size
    return chosen


def _fisher_yates_columns(values: npt.NDArray[np.int64], uniforms: npt.NDArray[np.float64]) -> None:
    """`_fisher_yates` down every column at once: one vectorised swap per position.

    `values` is (positions × forms) and C-contiguous, so row i is contiguous and the rows
    being swapped in are reached by flat indices (`take`/`put`), much faster than 2-D fancy
    indexing.
    """
    size, forms = values.shape
    flat = values.reshape(-1)
    columns = np.arange(forms, dtype=np.int64)
    for i in range(uniforms.shape[0]):
        span = size - i
        there = (i + np.minimum((uniforms[i] * span).astype(np.int64), span - 1)) * forms
        there += columns
        held = values[i].copy()
        values[i] = flat.take(there)
        flat.put(there, held)


def _ranks(
    uniforms: npt.NDArray[np.float64], option_counts: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Block 3 for a chunk: the permutation rank of each position, by its item's option count."""
    counts = np.array([math.factorial(size) for size in range(9)], dtype=np.int64)[option_counts]
    return np.minimum((uniforms * counts).astype(np.int64), counts - 1)


_DENSE_LIMIT = 1 << 22
"""Most (item, permutation) codes `_FormItemCache` keeps in a table (32 MB of references);
banks with more (many 7- or 8-option items) share form items within a chunk only."""


class _FormItemCache:
    """One shared `FormItem` per (item, option permutation) — they are immutable.

    Codes are the item's first code + the permutation's rank. While the codes fit a table of
    `_DENSE_LIMIT`, entries sit in a numpy object array filled on first use, so a whole chunk
    of forms is looked up by one fancy index, in C, without a Python int per form item.
    Missing entries are made together, one searchsorted for all of them: a 10,000-item bank
    has 240,000 (item, permutation) pairs, and making them one call at a time cost more than
    drawing the forms.
    """

    def __init__(self, pool_items: Sequence[Item]) -> None:
        sizes = [item.option_count for item in pool_items]
        self._item_ids = [item.id for item in pool_items]
        permutations = {size: _permutations(size) for size in set(sizes)}
        self._item_permutations = [permutations[size] for size in sizes]
        self.first_codes = np.cumsum([0, *(math.factorial(size) for size in sizes[:-1])])
        code_count = sum(math.factorial(size) for size in sizes)
        self._dense = code_count <= _DENSE_LIMIT
        self._table = np.empty(code_count if self._dense else 0, dtype=object)
        self._filled = np.zeros(code_count if self._dense else 0, dtype=bool)
        self._complete = False  # every code made: no chunk needs to look for new ones

    def tuples(self, codes: npt.NDArray[np.int64]) -> list[tuple[FormItem, ...]]:
        """The form items of each row of codes, one tuple per row."""
        if not self._dense:
            unique, inverse = np.unique(codes, return_inverse=True)
            made = np.empty(len(unique), dtype=object)
            made[:] = self._make(unique)
            return list(map(tuple, made[inverse.reshape(codes.shape)].tolist()))
        if not self._complete:
            wanted = np.zeros_like(self._filled)
            wanted[codes] = True
            new = np.flatnonzero(wanted & ~self._filled)
            if new.size:
                self._table[new] = self._make(new)
                self._filled[new] = True
                self._complete = bool(self._filled.all())
        return list(map(tuple, self._table[codes].tolist()))

    def _make(self, codes: npt.NDArray[np.int64]) -> list[FormItem]:
        """New form items for sorted, distinct codes."""
        items = np.searchsorted(self.first_codes, codes, side="right") - 1
        ranks = codes - self.first_codes[items]
        ids, permutations = self._item_ids, self._item_permutations
        return [
            FormItem(ids[item], permutations[item][rank])
            for item, rank in zip(items.tolist(), ranks.tolist(), strict=True)
        ]
