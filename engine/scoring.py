"""Numpy primitives the scoring schemes share: the response matrix, group sums, thresholds.

A part is scored for many candidates at once: one row per candidate, one column per item of the
bank that any of them saw. Cells hold the chosen original option index, ``UNANSWERED`` where the
item was on the form but not answered, ``NOT_ON_FORM`` where it was not on the form at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from engine.model import Bank, Form

UNANSWERED = -1
NOT_ON_FORM = -2


@dataclass(frozen=True)
class ResponseMatrix:
    """Choices of many candidates over the items of one part's bank."""

    candidate_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    choices: npt.NDArray[np.int16]
    keys: npt.NDArray[np.int16]
    tags: Mapping[str, npt.NDArray[np.str_]]

    def __post_init__(self) -> None:
        rows, columns = len(self.candidate_ids), len(self.item_ids)
        if self.choices.shape != (rows, columns):
            raise ValueError(
                f"choices are {self.choices.shape}, expected ({rows}, {columns}): "
                "one row per candidate, one column per item"
            )
        if self.keys.shape != (columns,):
            raise ValueError(f"keys are {self.keys.shape}, expected ({columns},)")
        for dimension, labels in self.tags.items():
            if labels.shape != (columns,):
                raise ValueError(f"tags {dimension!r} are {labels.shape}, expected ({columns},)")
        if len(set(self.candidate_ids)) != rows:
            raise ValueError("a candidate appears in more than one row")

    @property
    def correct(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.choices == self.keys[np.newaxis, :])

    @property
    def on_form(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.choices != NOT_ON_FORM)

    @property
    def correct_counts(self) -> npt.NDArray[np.int64]:
        """Correct answers per candidate."""
        return np.asarray(self.correct.sum(axis=1, dtype=np.int64))

    @property
    def form_lengths(self) -> npt.NDArray[np.int64]:
        """Items on each candidate's form."""
        return np.asarray(self.on_form.sum(axis=1, dtype=np.int64))

    def group_counts(
        self, dimension: str
    ) -> dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
        """Per tag value: (correct per candidate, items on the form per candidate)."""
        labels = self.tags[dimension]
        correct, on_form = self.correct, self.on_form
        return {
            str(value): (
                correct[:, labels == value].sum(axis=1, dtype=np.int64),
                on_form[:, labels == value].sum(axis=1, dtype=np.int64),
            )
            for value in np.unique(labels)
        }


def build_matrix(
    bank: Bank, responses: Sequence[tuple[Form, Mapping[str, int | None]]]
) -> ResponseMatrix:
    """Rows from (form, {item id: original choice or None}) pairs, columns from the bank.

    `ValueError` names the candidate and item when a form holds an item the bank lacks, or a
    choice is not one of the item's options.
    """
    item_ids = tuple(item.id for item in bank.items)
    column = {item_id: index for index, item_id in enumerate(item_ids)}
    choices = np.full((len(responses), len(item_ids)), NOT_ON_FORM, dtype=np.int16)
    for row, (form, answers) in enumerate(responses):
        for form_item in form.items:
            index = column.get(form_item.item_id)
            if index is None:
                raise ValueError(
                    f"{form.candidate_id}: item {form_item.item_id!r} is not in bank {bank.id!r}"
                )
            choice = answers.get(form_item.item_id)
            if choice is not None and not 0 <= choice < bank.items[index].option_count:
                raise ValueError(
                    f"{form.candidate_id}: item {form_item.item_id!r} has options "
                    f"0..{bank.items[index].option_count - 1}, not {choice}"
                )
            choices[row, index] = UNANSWERED if choice is None else choice
    keys = np.array([item.key for item in bank.items], dtype=np.int16)
    dimensions: Iterable[str] = bank.tags.keys()
    tags = {d: np.array([item.tags[d] for item in bank.items], dtype=np.str_) for d in dimensions}
    return ResponseMatrix(
        tuple(form.candidate_id for form, _ in responses), item_ids, choices, keys, tags
    )


def reaches_share(
    correct: npt.NDArray[np.int64], total: npt.NDArray[np.int64] | int, percent: int
) -> npt.NDArray[np.bool_]:
    """correct / total ≥ percent / 100, in exact integers: 70 % of 15 items needs 11."""
    return np.asarray(correct * 100 >= np.asarray(total) * percent)


def needed_for_share(total: int, percent: int) -> int:
    """The least whole number of correct answers that reaches the share."""
    return -(-total * percent // 100)
