"""Form assembly: deterministic, unique per candidate, true to the blueprint, batch == single."""

from __future__ import annotations

import dataclasses
import gc
import itertools
from collections import Counter
from pathlib import Path

import pytest

from engine import forms
from engine.banks import load_bank, write_synthetic_bank
from engine.exceptions import ConfigError
from engine.forms import assemble_form, assemble_forms, form_seed, shown_key
from engine.model import Bank, Blueprint, Exam, Form, Item, ItemText, Part, Site, frozen_map

SECRET = bytes(range(32))
COUNTS = {"ethics": 20, "procedure": 30, "prosecutor": 40}


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Bank:
    """150 items, 50 per act, 4 options (a bank large enough that forms can all differ)."""
    folder = write_synthetic_bank(
        tmp_path_factory.mktemp("bank") / "kz-law",
        bank_id="kz-law",
        item_count=150,
        languages=["kk", "ru"],
        dimension="act",
        values=sorted(COUNTS),
    )
    return load_bank(folder)


def make_part(counts: dict[str, int] | None = None, *, shuffle_options: bool = True) -> Part:
    return Part(
        "law",
        {"ru": "Закон"},
        "kz-law",
        5400,
        Blueprint("act", counts or COUNTS),
        shuffle_options=shuffle_options,
    )


def make_exam(part: Part) -> Exam:
    return Exam(
        "kz-test",
        {"ru": "Тест"},
        "kz-prosecutor",
        ("kk", "ru"),
        (part,),
        (Site("astana", {"ru": "Астана"}),),
    )


PART = make_part()
EXAM = make_exam(PART)


def item_ids(form: Form) -> tuple[str, ...]:
    return tuple(form_item.item_id for form_item in form.items)


# --- the seed -----------------------------------------------------------------------------------


def test_seed_is_deterministic_and_depends_on_every_field() -> None:
    seed = form_seed(SECRET, "exam", "cand", "part")
    assert seed == form_seed(SECRET, "exam", "cand", "part")
    assert 0 <= seed < 2**128
    others = {
        form_seed(SECRET[:-1] + b"\x00", "exam", "cand", "part"),
        form_seed(SECRET, "exam2", "cand", "part"),
        form_seed(SECRET, "exam", "cand2", "part"),
        form_seed(SECRET, "exam", "cand", "part2"),
    }
    assert seed not in others
    assert len(others) == 4


def test_seed_fields_cannot_run_into_each_other() -> None:
    assert form_seed(SECRET, "ab", "c", "p") != form_seed(SECRET, "a", "bc", "p")
    assert form_seed(SECRET, "e", "ab", "c") != form_seed(SECRET, "e", "a", "bc")
    assert form_seed(SECRET + b"e", "x", "c", "p") != form_seed(SECRET, "ex", "c", "p")


def test_the_stream_is_splitmix64_as_documented() -> None:
    """Step 1 of the algorithm, written out in plain integers, matches the array code."""
    import numpy as np

    seed = form_seed(SECRET, "exam", "cand", "part")
    k0, k1 = seed >> 64, seed & (2**64 - 1)
    expected = []
    for i in range(50):
        z = (k0 + (i + 1) * 0x9E3779B97F4A7C15) % 2**64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        z ^= z >> 31
        expected.append(((z ^ k1) >> 11) / 2**53)
    keys = [np.array([k], dtype=np.uint64) for k in (k0, k1)]
    assert forms._uniform_rows(keys[0], keys[1], 50)[:, 0].tolist() == expected


# --- one form -----------------------------------------------------------------------------------


def test_same_inputs_same_form(bank: Bank) -> None:
    first = assemble_form(SECRET, EXAM, PART, bank, "kz-test-00001")
    assert first == assemble_form(SECRET, EXAM, PART, bank, "kz-test-00001")
    assert (first.exam_id, first.candidate_id, first.part_id) == ("kz-test", "kz-test-00001", "law")


def test_form_depends_on_secret_candidate_and_part(bank: Bank) -> None:
    form = assemble_form(SECRET, EXAM, PART, bank, "c1")
    other_part = dataclasses.replace(PART, id="law-2")
    assert item_ids(form) != item_ids(assemble_form(bytes(32), EXAM, PART, bank, "c1"))
    assert item_ids(form) != item_ids(assemble_form(SECRET, EXAM, PART, bank, "c2"))
    assert item_ids(form) != item_ids(assemble_form(SECRET, EXAM, other_part, bank, "c1"))


def test_exact_blueprint_counts_of_distinct_bank_items(bank: Bank) -> None:
    for candidate in ("a", "b", "c"):
        form = assemble_form(SECRET, EXAM, PART, bank, candidate)
        ids = item_ids(form)
        assert len(ids) == len(set(ids)) == 90
        assert Counter(bank.by_id[item_id].tags["act"] for item_id in ids) == COUNTS


def test_whole_order_is_shuffled_not_grouped_by_value(bank: Bank) -> None:
    form = assemble_form(SECRET, EXAM, PART, bank, "c1")
    acts = [bank.by_id[item_id].tags["act"] for item_id in item_ids(form)]
    changes = sum(1 for left, right in itertools.pairwise(acts) if left != right)
    assert changes > 30  # grouped by act there would be 2


def test_option_orders_are_shuffled_permutations(bank: Bank) -> None:
    form = assemble_form(SECRET, EXAM, PART, bank, "c1")
    for form_item in form.items:
        assert sorted(form_item.option_order) == [0, 1, 2, 3]
    identities = sum(1 for form_item in form.items if form_item.option_order == (0, 1, 2, 3))
    assert identities < 15  # 1 in 24 expected: about 4 of 90


def test_every_option_permutation_occurs(bank: Bank) -> None:
    orders = Counter(
        form_item.option_order
        for form in assemble_forms(SECRET, EXAM, PART, bank, [f"c{n}" for n in range(100)])
        for form_item in form.items
    )
    assert set(orders) == set(itertools.permutations(range(4)))
    assert min(orders.values()) > 9000 / 24 * 0.7


def test_unshuffled_options_keep_the_items(bank: Bank) -> None:
    plain = make_part(shuffle_options=False)
    form = assemble_form(SECRET, EXAM, plain, bank, "c1")
    assert all(form_item.option_order == (0, 1, 2, 3) for form_item in form.items)
    assert item_ids(form) == item_ids(assemble_form(SECRET, EXAM, PART, bank, "c1"))


def test_shown_key_points_at_the_true_answer(bank: Bank) -> None:
    form = assemble_form(SECRET, EXAM, PART, bank, "c1")
    positions: Counter[int] = Counter()
    for form_item in form.items:
        item = bank.by_id[form_item.item_id]
        shown = shown_key(form_item, item)
        for language in ("kk", "ru"):
            options = item.texts[language].options
            shown_options = [options[original] for original in form_item.option_order]
            assert shown_options[shown] == options[item.key]
        positions[shown] += 1
    assert len(positions) == 4  # the correct answer is not always in the same place


def test_shown_key_refuses_another_item(bank: Bank) -> None:
    form = assemble_form(SECRET, EXAM, PART, bank, "c1")
    other = next(item for item in bank.items if item.id != form.items[0].item_id)
    with pytest.raises(ValueError, match="is not item"):
        shown_key(form.items[0], other)


def test_bank_file_order_cannot_change_a_form(bank: Bank) -> None:
    reversed_bank = Bank(
        bank.id, bank.version, bank.languages, bank.title, bank.tags, tuple(reversed(bank.items))
    )
    assert assemble_form(SECRET, EXAM, PART, bank, "c1") == assemble_form(
        SECRET, EXAM, PART, reversed_bank, "c1"
    )


def test_blueprint_order_cannot_change_a_form(bank: Bank) -> None:
    reordered = make_part(dict(reversed(list(COUNTS.items()))))
    assert list(reordered.blueprint.counts) != list(PART.blueprint.counts)
    assert assemble_form(SECRET, EXAM, PART, bank, "c1") == assemble_form(
        SECRET, EXAM, reordered, bank, "c1"
    )


def test_items_are_drawn_uniformly(bank: Bank) -> None:
    """Each of the 50 items of an act lands in about 20/50 of the forms (no Fisher–Yates bias)."""
    counts = Counter(
        item_id
        for form in assemble_forms(SECRET, EXAM, PART, bank, [f"c{n}" for n in range(3000)])
        for item_id in item_ids(form)
        if bank.by_id[item_id].tags["act"] == "ethics"
    )
    assert len(counts) == 50
    expected = 3000 * 20 / 50  # 1200, standard deviation about 27
    assert all(abs(count - expected) < 150 for count in counts.values()), counts


def test_first_position_is_uniform_over_the_values(bank: Bank) -> None:
    """The whole order is shuffled: position 0 holds each act in proportion to its count."""
    firsts = Counter(
        bank.by_id[form.items[0].item_id].tags["act"]
        for form in assemble_forms(SECRET, EXAM, PART, bank, [f"c{n}" for n in range(3000)])
    )
    for act, count in COUNTS.items():
        assert abs(firsts[act] - 3000 * count / 90) < 150, firsts


# --- many forms ---------------------------------------------------------------------------------


def test_two_thousand_candidates_get_two_thousand_different_forms(bank: Bank) -> None:
    candidates = [f"kz-test-{n:05d}" for n in range(1, 2001)]
    batch = assemble_forms(SECRET, EXAM, PART, bank, candidates)
    assert [form.candidate_id for form in batch] == candidates
    assert len({item_ids(form) for form in batch}) == 2000
    assert len({frozenset(item_ids(form)) for form in batch}) == 2000


@pytest.mark.parametrize("shuffle_options", [True, False])
def test_batch_equals_single_across_chunks(
    bank: Bank, monkeypatch: pytest.MonkeyPatch, shuffle_options: bool
) -> None:
    monkeypatch.setattr(forms, "_CHUNK", 7)  # several chunks, the last one short
    part = make_part(shuffle_options=shuffle_options)
    candidates = [f"c{n}" for n in range(30)]
    assert assemble_forms(SECRET, EXAM, part, bank, candidates) == [
        assemble_form(SECRET, EXAM, part, bank, candidate) for candidate in candidates
    ]


@pytest.mark.parametrize("dense_limit", [forms._DENSE_LIMIT, 0])
def test_batch_equals_single_with_mixed_option_counts(
    monkeypatch: pytest.MonkeyPatch, dense_limit: int
) -> None:
    """Items with 2 to 8 options in one bank: each gets a permutation of its own size.

    With a dense limit of 0 the batch takes the path for banks too large to tabulate.
    """
    monkeypatch.setattr(forms, "_DENSE_LIMIT", dense_limit)
    monkeypatch.setattr(forms, "_CHUNK", 16)
    items = tuple(
        Item(
            id=f"i-{n:02d}",
            key=n % size,
            tags=frozen_map({"kind": "a" if n % 2 else "b"}),
            texts=frozen_map({"en": ItemText(f"stem {n}", tuple(f"o{k}" for k in range(size)))}),
        )
        for n, size in enumerate(itertools.islice(itertools.cycle(range(2, 9)), 40))
    )
    mixed = Bank(
        "mixed",
        "1",
        ("en",),
        frozen_map({"en": "Mixed"}),
        frozen_map({"kind": frozen_map({"a": {}, "b": {}})}),
        items,
    )
    part = Part("p", {"en": "P"}, "mixed", 60, Blueprint("kind", {"a": 15, "b": 12}))
    exam = make_exam(part)
    candidates = [f"c{n}" for n in range(50)]
    batch = assemble_forms(SECRET, exam, part, mixed, candidates)
    assert batch == [assemble_form(SECRET, exam, part, mixed, c) for c in candidates]
    for form in batch:
        for form_item in form.items:
            size = mixed.by_id[form_item.item_id].option_count
            assert sorted(form_item.option_order) == list(range(size))


def test_batch_of_none(bank: Bank) -> None:
    assert assemble_forms(SECRET, EXAM, PART, bank, []) == []


@pytest.mark.parametrize("state", ["collecting", "off", "frozen"])
def test_batch_leaves_the_collector_as_it_found_it(bank: Bank, state: str) -> None:
    """The batch pauses the collector and files its forms as old objects; it never turns the
    collector on for a caller who had it off, nor thaws what the caller froze."""
    was_enabled = gc.isenabled()
    try:
        if state == "off":
            gc.disable()
        if state == "frozen":
            gc.freeze()
        frozen_before = gc.get_freeze_count()
        made = assemble_forms(SECRET, EXAM, PART, bank, ["c1", "c2"])
        assert gc.isenabled() is (state != "off")
        assert gc.get_freeze_count() == frozen_before
        assert made == [assemble_form(SECRET, EXAM, PART, bank, c) for c in ("c1", "c2")]
    finally:
        if state == "frozen":
            gc.unfreeze()
        if was_enabled:
            gc.enable()


# --- refusals -----------------------------------------------------------------------------------


def _tiny_bank() -> Bank:
    texts = frozen_map({"kk": ItemText("s", ("a", "b"))})
    items = tuple(
        Item(f"i{n}", 0, frozen_map({"act": act}), texts)
        for n, act in enumerate(["ethics", "procedure", "prosecutor"])
    )
    no_title: dict[str, str] = {}
    tags = frozen_map({"act": frozen_map({act: no_title for act in COUNTS})})
    return Bank("kz-law", "1", ("kk",), frozen_map({}), tags, items)


def test_blueprint_larger_than_the_pool_is_refused() -> None:
    with pytest.raises(
        ConfigError, match="asks for 20 items with act = 'ethics'; bank 'kz-law' has 1"
    ):
        assemble_form(SECRET, EXAM, PART, _tiny_bank(), "c1")


def test_part_of_another_bank_is_refused(bank: Bank) -> None:
    part = dataclasses.replace(PART, bank_id="ua-apt")
    with pytest.raises(ConfigError, match="draws from bank 'ua-apt', not 'kz-law'"):
        assemble_forms(SECRET, EXAM, part, bank, ["c1"])


def test_unknown_dimension_is_refused(bank: Bank) -> None:
    part = dataclasses.replace(PART, blueprint=Blueprint("topic", {"x": 1}))
    with pytest.raises(ConfigError, match="no tag dimension 'topic'"):
        assemble_form(SECRET, EXAM, part, bank, "c1")


def test_short_secret_is_refused(bank: Bank) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        assemble_form(b"short", EXAM, PART, bank, "c1")


def test_demo_bank_from_a_file_round_trip(tmp_path: Path) -> None:
    """A bank written to disk and read back draws the same forms as before (ids decide)."""
    folder = write_synthetic_bank(
        tmp_path / "kz-law",
        bank_id="kz-law",
        item_count=150,
        languages=["kk", "ru"],
        dimension="act",
        values=sorted(COUNTS),
    )
    first, second = load_bank(folder), load_bank(folder)
    assert assemble_forms(SECRET, EXAM, PART, first, ["c1", "c2"]) == assemble_forms(
        SECRET, EXAM, PART, second, ["c1", "c2"]
    )
