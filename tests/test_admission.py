"""Admission against the person's earlier sittings: the KZ one-month wait across exams (KZ-9)
and the UA finality of no-show and removal (UA-7, UA-3), recorded as notices."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.admission import check_admission, past_sittings
from engine.exceptions import AdmissionRefused
from engine.model import Candidate
from engine.schemes import AdmissionDecision
from engine.store.sqlite import read_journal
from tests.results_world import ALMATY, KYIV, World, local, open_world

FAILED_AT = local(ALMATY, 2026, 1, 31, 10, 0)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    opened = await open_world(tmp_path)
    yield opened
    await opened.store.close()


async def admit_to_second_round(world: World, candidate_id: str, now: float) -> AdmissionDecision:
    person = world.candidates["kz-t2"][candidate_id]
    return await check_admission(world.store, world.registry, world.exams["kz-t2"], person, now)


async def test_a_failure_in_one_round_bars_the_same_iin_from_the_next_for_a_month(
    world: World,
) -> None:
    await world.sit("kz-t", "kz-01", "legislation", closed_at=FAILED_AT, correct=10)
    with pytest.raises(AdmissionRefused) as refused:
        await admit_to_second_round(world, "kz-01", local(ALMATY, 2026, 2, 27, 23, 59))
    assert refused.value.allowed_from == "2026-02-28" and refused.value.rule == "KZ-9"
    assert "allowed no earlier than one month later, from 28.02.2026" in refused.value.message
    assert [e.kind for e in read_journal(world.store.path)][-1] == "admission-refused"
    decision = await admit_to_second_round(world, "kz-01", local(ALMATY, 2026, 2, 28, 0, 0))
    assert decision.admitted


async def test_a_pass_and_other_people_do_not_bar_anyone(world: World) -> None:
    await world.sit("kz-t", "kz-01", "legislation", closed_at=FAILED_AT, correct=20)
    await world.sit("kz-t", "kz-02", "legislation", closed_at=FAILED_AT, correct=2)
    soon = FAILED_AT + 3600
    assert (await admit_to_second_round(world, "kz-01", soon)).admitted
    assert (await admit_to_second_round(world, "kz-03", soon)).admitted


async def test_a_person_is_matched_by_document_not_by_candidate_id(world: World) -> None:
    await world.sit("kz-t", "kz-02", "legislation", closed_at=FAILED_AT, correct=2)
    person = world.candidates["kz-t2"]["kz-02"]
    renamed = Candidate("kz-new-77", "kz-t2", person.full_name, person.site_id, "", person.document)
    history = await world.store.run(lambda c: past_sittings(c, world.exams["kz-t2"], renamed))
    assert [(p.exam_id, p.candidate_id, p.same_exam) for p in history] == [("kz-t", "kz-02", False)]
    assert history[0].outcome is not None and history[0].outcome.value == "fail"
    without_document = Candidate("kz-02", "kz-t2", person.full_name, person.site_id)
    assert (
        await world.store.run(lambda c: past_sittings(c, world.exams["kz-t2"], without_document))
        == []
    ), "without a document only the same exam counts"


async def test_removed_in_the_professional_test_means_no_aptitude_test(world: World) -> None:
    at = local(KYIV, 2026, 3, 10, 12, 0)
    await world.sit("ua-t", "ua-04", "professional", closed_at=at, state="terminated")
    person = world.candidates["ua-t"]["ua-04"]
    with pytest.raises(AdmissionRefused, match="removed from the professional test") as refused:
        await check_admission(
            world.store, world.registry, world.exams["ua-t"], person, at + 600, part_id="aptitude"
        )
    assert refused.value.allowed_from is None, "a removal does not end"
    other = world.candidates["ua-t"]["ua-05"]
    decision = await check_admission(
        world.store, world.registry, world.exams["ua-t"], other, at, part_id="aptitude"
    )
    assert decision.admitted


async def test_the_sitting_being_entered_is_not_its_own_history(world: World) -> None:
    at = local(KYIV, 2026, 3, 10, 12, 0)
    await world.sit("ua-t", "ua-05", "professional", closed_at=at, correct=5)
    person = world.candidates["ua-t"]["ua-05"]
    history = await world.store.run(
        lambda c: past_sittings(c, world.exams["ua-t"], person, excluding="ua-t/ua-05/professional")
    )
    assert history == []
