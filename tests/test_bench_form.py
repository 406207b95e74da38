"""The bench's sittings read their form's item ids and option counts as the server sent them,
without decoding the texts, and let the frame go once read (bench/load.py)."""

from __future__ import annotations

import msgpack

from bench.load import Sitting, Tally, form_items
from engine import wire

STEM = "Сұрақ мәтіні " * 20


def a_form_frame() -> bytes:
    items = [
        wire.ItemOut(
            f"item-{n:03d}", "Сұрақ мәтіні " * 20, [f"нұсқа {k}" for k in range(2 + n % 4)]
        )
        for n in range(120)
    ]
    return wire.form_frame("kk", [wire.encode_item(item) for item in items])


def test_the_items_are_read_as_a_full_decoding_would_read_them() -> None:
    frame = a_form_frame()
    decoded = msgpack.unpackb(frame, raw=False)
    expected = [(item["id"], len(item["options"])) for item in decoded["items"]]
    assert form_items(frame) == expected
    assert {count for _, count in expected} == {2, 3, 4, 5}


def test_a_sitting_reads_its_form_once_and_keeps_only_the_items() -> None:
    sitting = Sitting("http://127.0.0.1:1", "CODE", "part", "kk", Tally())
    sitting._form_frame = a_form_frame()
    sitting.read_form()
    assert sitting._form_frame is None
    assert sitting.items[0] == ("item-000", 2) and len(sitting.items) == 120
