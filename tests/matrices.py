"""In-memory banks, exams and response matrices for scheme tests: no files, exact control.

`answering` builds a matrix in which every item of the bank is on every form (the bank holds
exactly the blueprint), and each row answers right exactly as many items per tag as asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from engine.model import Bank, Blueprint, Exam, Item, ItemText, Part, Site, frozen_map
from engine.scoring import UNANSWERED, ResponseMatrix


def bank_of(
    dimension: str, counts: Mapping[str, int], *, options: int = 4, bank_id: str = "b"
) -> Bank:
    """A bank with exactly `counts` items per tag value; keys cycle through the options."""
    items = []
    for value, count in counts.items():
        for n in range(count):
            item_id = f"{value}-{n:04d}"
            items.append(
                Item(
                    item_id,
                    (n * 7 + len(value)) % options,
                    frozen_map({dimension: value}),
                    frozen_map(
                        {"ru": ItemText(f"Q {item_id}", tuple(f"o{k}" for k in range(options)))}
                    ),
                )
            )
    titles = {value: frozen_map({"ru": f"Act {value}", "kk": f"Акт {value}"}) for value in counts}
    return Bank(
        bank_id, "1", ("ru",), frozen_map({"ru": "b"}), frozen_map({dimension: frozen_map(titles)}),
        tuple(items),
    )  # fmt: skip


def part_of(
    part_id: str,
    bank: Bank,
    dimension: str,
    minutes: int = 90,
    *,
    per_tag: int | None = None,
) -> Part:
    """A part drawing every item of `bank`, or `per_tag` items of each tag value."""
    counts: dict[str, int] = {}
    for item in bank.items:
        counts[item.tags[dimension]] = counts.get(item.tags[dimension], 0) + 1
    if per_tag is not None:
        counts = dict.fromkeys(counts, per_tag)
    return Part(
        part_id, frozen_map({"ru": part_id}), bank.id, minutes * 60,
        Blueprint(dimension, frozen_map(counts)),
    )  # fmt: skip


def exam_of(
    scheme: str, parts: Sequence[Part], *, settings: Mapping[str, object] | None = None
) -> Exam:
    return Exam(
        "x", frozen_map({"ru": "X", "uk": "X", "kk": "X"}), scheme, ("ru",), tuple(parts),
        (Site("s1", frozen_map({"ru": "Site", "uk": "Центр", "kk": "Орын"})),),
        settings=frozen_map(settings or {}),
    )  # fmt: skip


def answering(
    bank: Bank,
    dimension: str,
    rows: Sequence[Mapping[str, int]],
    *,
    candidate_ids: Sequence[str] | None = None,
    blanks: bool = False,
) -> ResponseMatrix:
    """Row r answers right the first rows[r][tag] items of each tag, the rest wrong (or blank)."""
    ids = tuple(candidate_ids or [f"c{r:03d}" for r in range(len(rows))])
    item_ids = tuple(item.id for item in bank.items)
    keys = np.array([item.key for item in bank.items], dtype=np.int16)
    choices = np.empty((len(rows), len(item_ids)), dtype=np.int16)
    for r, wanted in enumerate(rows):
        seen: dict[str, int] = {}
        for j, item in enumerate(bank.items):
            tag = item.tags[dimension]
            seen[tag] = seen.get(tag, 0) + 1
            if seen[tag] <= wanted.get(tag, 0):
                choices[r, j] = item.key
            elif blanks:
                choices[r, j] = UNANSWERED
            else:
                choices[r, j] = (item.key + 1) % item.option_count
    tags = {dimension: np.array([item.tags[dimension] for item in bank.items], dtype=np.str_)}
    return ResponseMatrix(ids, item_ids, choices, keys, tags)
