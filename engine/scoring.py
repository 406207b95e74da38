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

    @property
    def correct(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.choices == self.keys[np.newaxis, :])

    @property
    def on_form(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.choices != NOT_ON_FORM)

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
    """Rows from (form, {item id: original choice or None}) pairs, columns from the bank."""
    item_ids = tuple(item.id for item in bank.items)
    column = {item_id: index for index, item_id in enumerate(item_ids)}
    choices = np.full((len(responses), len(item_ids)), NOT_ON_FORM, dtype=np.int16)
    for row, (form, answers) in enumerate(responses):
        for form_item in form.items:
            choice = answers.get(form_item.item_id)
            choices[row, column[form_item.item_id]] = UNANSWERED if choice is None else choice
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
