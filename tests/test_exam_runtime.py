"""A loaded exam hands out each candidate's form, made in batches, equal to the reference."""

from __future__ import annotations

import random

from engine.banks import load_banks
from engine.exams import load_exams
from engine.forms import assemble_form
from engine.resources import bundled_banks_dir
from engine.server.hall import FORM_BATCH, ExamRuntime

SECRET = bytes(range(32))


def test_batched_forms_equal_the_reference_in_any_order_and_again() -> None:
    banks = load_banks(bundled_banks_dir())
    setup = load_exams(bundled_banks_dir() / "exams", banks)["ua-demo"]
    exam = setup.exam
    runtime = ExamRuntime(
        exam,
        {part.id: banks[part.bank_id] for part in exam.parts},
        {candidate.id: candidate for candidate in setup.candidates},
        SECRET,
    )
    roster = [candidate.id for candidate in setup.candidates]
    asked = random.Random(7).sample(roster, 2 * FORM_BATCH + 3)
    asked += asked[:5]  # a reconnect after the batch's form was taken
    for part in exam.parts:
        bank = banks[part.bank_id]
        for candidate_id in asked:
            expected = assemble_form(SECRET, exam, part, bank, candidate_id)
            assert runtime.form(candidate_id, part) == expected
        stranger = assemble_form(SECRET, exam, part, bank, "not-on-the-roster")
        assert runtime.form("not-on-the-roster", part) == stranger
