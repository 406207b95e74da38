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
ItemKey = tuple[str, tuple[int, ...]]
"""(item id, option order): a plain tuple, hashed and compared in C at 120 lookups a form."""


class FormFrames:
    def __init__(self, limit: int = 200_000) -> None:
        self._encoded: dict[BankKey, dict[ItemKey, bytes]] = {}
        self._count = 0
        self._limit = limit
        """Encoded items kept; a 260-item bank in two languages needs at most 12,480."""

    def frame(self, bank: Bank, language: str, form: Form) -> bytes:
        encoded = self._encoded.setdefault((bank.id, bank.version, language), {})
        parts = []
        for form_item in form.items:
            key = (form_item.item_id, form_item.option_order)
            data = encoded.get(key)
            if data is None:
                if self._count >= self._limit:  # a bank far larger than any real one
                    self._encoded.clear()
                    self._count = 0
                    encoded = self._encoded.setdefault((bank.id, bank.version, language), {})
                data = encoded[key] = wire.encode_item(item_out(bank, language, form_item))
                self._count += 1
            parts.append(data)
        return wire.form_frame(language, parts)

    @property
    def kept(self) -> int:
        return self._count


def item_out(bank: Bank, language: str, form_item: FormItem) -> wire.ItemOut:
    """An item as this candidate sees it: their language, their option order, no key."""
    text = bank.by_id[form_item.item_id].texts[language]
    options = [text.options[original] for original in form_item.option_order]
    return wire.ItemOut(form_item.item_id, text.stem, options)
