"""The `form` frame a sitting receives, joined from items encoded once.

Every candidate gets the same items in other orders; encoding an (item, option order, language)
once and joining the bytes makes the 77 KiB frame of a start or a resume cheap, which is what a
whole room pressing start at 9:00 spends its time on.
"""

from __future__ import annotations

from engine import wire
from engine.model import Bank, Form, FormItem

BankKey = tuple[str, str, str]
"""(bank id, bank version, language)."""
OptionOrder = tuple[int, ...]


class FormFrames:
    def __init__(self, limit: int = 200_000) -> None:
        self._encoded: dict[BankKey, dict[str, dict[OptionOrder, bytes]]] = {}
        """Per bank and language, per item id, per option order: the encoded item. Two small
        lookups an item (an interned id, then one of at most 24 orders) instead of one in a
        dict of every (id, order) pair: 116 µs a 120-item frame, where that took 142–149."""
        self._count = 0
        self._limit = limit
        """Encoded items kept; a 260-item bank in two languages needs at most 12,480."""

    def frame(self, bank: Bank, language: str, form: Form) -> bytes:
        by_item = self._encoded.get((bank.id, bank.version, language))
        if by_item is not None:
            try:
                parts = [by_item[item.item_id][item.option_order] for item in form.items]
            except KeyError:
                pass  # an item or an order not encoded yet
            else:
                return wire.form_frame(language, parts)
        return wire.form_frame(
            language, [self._encode(bank, language, item) for item in form.items]
        )

    def _encode(self, bank: Bank, language: str, form_item: FormItem) -> bytes:
        by_item = self._encoded.setdefault((bank.id, bank.version, language), {})
        by_order = by_item.setdefault(form_item.item_id, {})
        data = by_order.get(form_item.option_order)
        if data is None:
            if self._count >= self._limit:  # a bank far larger than any real one
                self._encoded.clear()
                self._count = 0
                by_item = self._encoded.setdefault((bank.id, bank.version, language), {})
                by_order = by_item.setdefault(form_item.item_id, {})
            data = by_order[form_item.option_order] = wire.encode_item(
                item_out(bank, language, form_item)
            )
            self._count += 1
        return data

    @property
    def kept(self) -> int:
        return self._count


def item_out(bank: Bank, language: str, form_item: FormItem) -> wire.ItemOut:
    """An item as this candidate sees it: their language, their option order, no key."""
    text = bank.by_id[form_item.item_id].texts[language]
    options = [text.options[original] for original in form_item.option_order]
    return wire.ItemOut(form_item.item_id, text.stem, options)
