"""Seeded, unique, blueprint-true form assembly.

A candidate's form for a part is a pure function of (exam secret, exam id, candidate id, part id)
and the bank: it can be rebuilt at any time for an appeal or an audit, it differs between
candidates (UA-10), and it cannot be predicted without the secret (under UA-4 the item list is
public, so knowing someone's form in advance would be knowing their questions).

The algorithm (version 1) — changing any step changes every form, so it is a contract:

1. ``seed = form_seed(...)``; ``u = numpy.random.default_rng(seed).random(3 * T)`` where T is the
   blueprint total. Every later step only reads ``u``, in three blocks of T numbers.
2. Selection, block 1: for each blueprint value in sorted order, the bank items with that tag
   sorted by id form a pool of n; a partial Fisher–Yates shuffle with
   ``j = i + floor(u * (n - i))`` for i = 0 .. k-1 moves k distinct items to the front.
3. Order, block 2: the k-per-value selections are concatenated and shuffled by the same
   forward Fisher–Yates over all T positions.
4. Options, block 3: the item at position i gets the permutation of rank
   ``floor(u * m!)`` in lexicographic order of the permutations of its m options (rank 0, the
   identity, when the part does not shuffle options). Blocks are drawn either way, so switching
   option shuffling off does not change which items a candidate gets.

`assemble_form` is the plain reference; `assemble_forms` computes the same forms for many
candidates at once with array operations.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from engine.exceptions import ConfigError
from engine.model import Bank, Exam, Form, FormItem, Item, Part

Shuffled = TypeVar("Shuffled")

FORM_ALGORITHM = 1
MIN_SECRET_BYTES = 16
_SEED_DOMAIN = b"examhall-form-v1"
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
    hasher = exam_hasher.copy()
    hasher.update(_length_prefixed(candidate_id.encode()))
    hasher.update(_length_prefixed(part_id.encode()))
    return int.from_bytes(hasher.digest()[:16], "big")


def _length_prefixed(field: bytes) -> bytes:
    return len(field).to_bytes(8, "big") + field


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


def _plan(exam: Exam, part: Part, bank: Bank, secret: bytes) -> _Plan:
    """Check that the part can be drawn from this bank and list its pools."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the exam secret must be at least {MIN_SECRET_BYTES} bytes")
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
    return _Plan(tuple(pools), part.blueprint.total)


def assemble_form(secret: bytes, exam: Exam, part: Part, bank: Bank, candidate_id: str) -> Form:
    """The form of one candidate for one part (the reference implementation of the algorithm)."""
    plan = _plan(exam, part, bank, secret)
    total = plan.total
    rng = np.random.default_rng(form_seed(secret, exam.id, candidate_id, part.id))
    u = rng.random(3 * total).tolist()
    chosen: list[Item] = []
    offset = 0
    for pool, count in plan.pools:
        indices = list(range(len(pool)))
        _fisher_yates(indices, u[offset : offset + count])
        chosen.extend(pool[index] for index in indices[:count])
        offset += count
    _fisher_yates(chosen, u[total : 2 * total])
    items = []
    for position, item in enumerate(chosen):
        size = item.option_count
        rank = _rank(u[2 * total + position], size) if part.shuffle_options else 0
        items.append(FormItem(item.id, _permutation_of_rank(rank, size)))
    return Form(exam.id, candidate_id, part.id, tuple(items))


def _fisher_yates(values: list[Shuffled], uniforms: Sequence[float]) -> None:
    """Forward Fisher–Yates on the first len(uniforms) positions, in place."""
    size = len(values)
    for i, uniform in enumerate(uniforms):
        j = i + min(int(uniform * (size - i)), size - i - 1)
        values[i], values[j] = values[j], values[i]


def _rank(uniform: float, size: int) -> int:
    count = math.factorial(size)
    return min(int(uniform * count), count - 1)


def _permutation_of_rank(rank: int, size: int) -> tuple[int, ...]:
    """The permutation of range(size) at `rank` in lexicographic order (factorial number system)."""
    remaining = list(range(size))
    order = []
    for place in range(size - 1, -1, -1):
        index, rank = divmod(rank, math.factorial(place))
        order.append(remaining.pop(index))
    return tuple(order)


# --- many candidates at once ---------------------------------------------------------------------


def assemble_forms(
    secret: bytes, exam: Exam, part: Part, bank: Bank, candidate_ids: Sequence[str]
) -> list[Form]:
    """The forms of many candidates for one part; equal to `assemble_form` for each of them.

    Each candidate still gets its own generator (that is what makes a form reproducible
    alone); the shuffles then run as array operations over a chunk of candidates, and the
    immutable `FormItem`s are shared between forms instead of being made 120 times per form.
    Arrays are laid out position-major (one row per form position, one column per candidate)
    so that every Fisher–Yates step reads and writes contiguous rows.
    """
    plan = _plan(exam, part, bank, secret)
    total = plan.total
    pool_items = [item for pool, _ in plan.pools for item in pool]
    option_counts = np.array([item.option_count for item in pool_items], dtype=np.int64)
    form_items = _FormItemCache(pool_items)
    exam_hasher = _exam_hasher(secret, exam.id)
    make_generator = np.random.default_rng
    forms: list[Form] = []
    for start in range(0, len(candidate_ids), _CHUNK):
        chunk = candidate_ids[start : start + _CHUNK]
        draws = [
            make_generator(_finish_seed(exam_hasher, candidate_id, part.id)).random(3 * total)
            for candidate_id in chunk
        ]
        uniforms = np.array(draws).T  # position-major, as a view of (candidates × 3T)
        order = _select(plan, uniforms[:total])
        _fisher_yates_columns(order, uniforms[total : 2 * total])
        if part.shuffle_options:
            ranks = _ranks(uniforms[2 * total :], option_counts[order])
        else:
            ranks = np.zeros_like(order)
        items_by_form = map(tuple, form_items.rows((form_items.first_codes[order] + ranks).T))
        forms.extend(map(Form, repeat(exam.id), chunk, repeat(part.id), items_by_form))
    return forms


def _select(plan: _Plan, uniforms: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Block 1 for a chunk: each form's chosen items as indices into the concatenated pools."""
    forms = uniforms.shape[1]
    chosen = np.empty((plan.total, forms), dtype=np.int64)
    offset = 0
    base = 0
    for pool, count in plan.pools:
        positions = np.arange(len(pool), dtype=np.int64)[:, np.newaxis]
        indices = np.repeat(positions, forms, axis=1)
        _fisher_yates_columns(indices, uniforms[offset : offset + count])
        chosen[offset : offset + count] = indices[:count] + base
        offset += count
        base += len(pool)
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
    """

    def __init__(self, pool_items: Sequence[Item]) -> None:
        self._pool_items = pool_items
        sizes = [item.option_count for item in pool_items]
        self.first_codes = np.cumsum([0, *(math.factorial(size) for size in sizes[:-1])])
        code_count = sum(math.factorial(size) for size in sizes)
        self._dense = code_count <= _DENSE_LIMIT
        self._table = np.empty(code_count if self._dense else 0, dtype=object)
        self._filled = np.zeros(code_count if self._dense else 0, dtype=bool)
        self._permutations = {
            size: list(itertools.permutations(range(size))) for size in set(sizes)
        }

    def rows(self, codes: npt.NDArray[np.int64]) -> list[list[FormItem]]:
        """The form items of each row of codes."""
        if not self._dense:
            unique, inverse = np.unique(codes, return_inverse=True)
            made = np.empty(len(unique), dtype=object)
            made[:] = [self._make(code) for code in unique.tolist()]
            return list(made[inverse.reshape(codes.shape)].tolist())
        known = self._filled[codes]
        if not known.all():
            for code in np.unique(codes[~known]).tolist():
                self._table[code] = self._make(code)
                self._filled[code] = True
        return list(self._table[codes].tolist())

    def _make(self, code: int) -> FormItem:
        index = int(np.searchsorted(self.first_codes, code, side="right")) - 1
        item = self._pool_items[index]
        rank = code - int(self.first_codes[index])
        return FormItem(item.id, self._permutations[item.option_count][rank])
