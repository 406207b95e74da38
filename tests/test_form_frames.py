"""The joined `form` frame is byte for byte the frame a full encode gives."""

from __future__ import annotations

import msgpack

from engine import wire
from engine.banks import load_banks
from engine.exams import load_exams
from engine.forms import assemble_form
from engine.resources import bundled_banks_dir
from engine.server.form_frames import FormFrames, item_out

SECRET = bytes(range(32))


def test_joined_frames_equal_full_encodes_for_the_demo_exams() -> None:
    banks = load_banks(bundled_banks_dir())
    frames = FormFrames(limit=3_000)  # small enough that the cache starts over in this test
    checked = 0
    for setup in load_exams(bundled_banks_dir() / "exams", banks).values():
        exam = setup.exam
        for part in exam.parts:
            bank = banks[part.bank_id]
            for candidate in setup.candidates[:40]:
                form = assemble_form(SECRET, exam, part, bank, candidate.id)
                for language in bank.languages:
                    items = [item_out(bank, language, form_item) for form_item in form.items]
                    expected = wire.serialize(wire.FormOut(language, items))
                    assert frames.frame(bank, language, form) == expected
                    checked += 1
    assert checked >= 40 * 3
    assert 0 < frames.kept <= 3_000


def test_a_joined_frame_parses_as_a_form() -> None:
    banks = load_banks(bundled_banks_dir())
    setup = load_exams(bundled_banks_dir() / "exams", banks)["kz-demo"]
    part = setup.exam.parts[0]
    bank = banks[part.bank_id]
    form = assemble_form(SECRET, setup.exam, part, bank, setup.candidates[0].id)
    frame = FormFrames().frame(bank, "kk", form)
    parsed = wire.parse(frame, max_bytes=wire.MAX_SERVER_FRAME_BYTES)
    assert isinstance(parsed, wire.FormOut) and parsed.language == "kk"
    assert [item.id for item in parsed.items] == [item.item_id for item in form.items]
    assert (
        msgpack.unpackb(frame)["items"][0]["options"] == item_out(bank, "kk", form.items[0]).options
    )
