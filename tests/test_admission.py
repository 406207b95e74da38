"""Admission against the person's earlier sittings: the KZ one-month wait across exams (KZ-9)
and the UA finality of no-show and removal (UA-7, UA-3), recorded as notices."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from engine import records
from engine.admission import check_admission, past_sittings
from engine.exceptions import AdmissionRefused
from engine.model import Candidate
from engine.schemes import AdmissionDecision, PastSitting
from engine.store.sqlite import read_journal
from tests.results_world import ALMATY, KYIV, World, local, open_world

FAILED_AT = local(ALMATY, 2026, 1, 31, 10, 0)
T = TypeVar("T")


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


async def test_the_history_reads_the_persons_sittings_not_every_final_one(world: World) -> None:
    """Earlier exam days' final sittings (3,000 here) are not walked at every sign-in."""
    await world.sit("kz-t", "kz-02", "legislation", closed_at=FAILED_AT, correct=2)
    person = world.candidates["kz-t2"]["kz-02"]
    without_document = Candidate("kz-02", "kz-t", person.full_name, person.site_id)

    def earlier_exam_days(connection: sqlite3.Connection) -> None:
        connection.executemany(
            "INSERT INTO sittings (id, exam_id, candidate_id, part_id, state, time_limit_s, "
            "extra_s, paused_total_s, close_reason, last_seq, lost_s) "
            "VALUES (?, 'kz-old', ?, 'legislation', 'submitted', 5400, 0, 0, '', 0, 0)",
            [(f"kz-old/old-{n:05d}/legislation", f"old-{n:05d}") for n in range(3000)],
        )

    def history_and_steps(candidate: Candidate) -> Awaitable[tuple[list[PastSitting], int]]:
        def read(connection: sqlite3.Connection) -> list[PastSitting]:
            records.ensure_schema(connection)  # as `check_admission` does
            return past_sittings(connection, world.exams["kz-t"], candidate)

        return world.store.run(lambda connection: counting_steps(connection, read))

    await world.store.run(earlier_exam_days)
    for candidate in (person, without_document):
        history, steps = await history_and_steps(candidate)
        assert [(p.exam_id, p.candidate_id) for p in history] == [("kz-t", "kz-02")]
        # A walk over the 3,000 would take thousands of steps of 100 instructions.
        assert steps < 20, f"{steps} hundred instructions for one person's history"


async def test_the_latest_notice_is_found_without_reading_everyone_elses(world: World) -> None:
    """Every refused sign-in adds a notice: 3,000 of others are not read at every check."""

    def notices_of_others(connection: sqlite3.Connection) -> None:
        records.ensure_schema(connection)
        connection.execute(
            "INSERT INTO admission_refusals (exam_id, candidate_id, part_id, at, rule, reason, "
            "journal_seq) VALUES ('kz-t2', 'kz-01', NULL, ?, 'KZ-9', 'not yet', 0)",
            (FAILED_AT,),
        )
        connection.executemany(  # after it: the newest first would pass them all
            "INSERT INTO admission_refusals (exam_id, candidate_id, part_id, at, rule, reason, "
            "journal_seq) VALUES ('kz-t2', ?, NULL, ?, 'KZ-9', 'a month has not passed', 0)",
            [(f"other-{n:05d}", FAILED_AT + n) for n in range(3000)],
        )

    def latest(connection: sqlite3.Connection) -> tuple[float, str, str] | None:
        return records.last_refusal(connection, "kz-t2", "kz-01")

    await world.store.run(notices_of_others)
    found, steps = await world.store.run(lambda connection: counting_steps(connection, latest))
    assert found == (FAILED_AT, "KZ-9", "not yet")
    assert steps < 20, f"{steps} hundred instructions for one candidate's latest notice"


def counting_steps(
    connection: sqlite3.Connection, read: Callable[[sqlite3.Connection], T]
) -> tuple[T, int]:
    """`read`'s result and how many hundred SQLite instructions it took (not a timing)."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    connection.set_progress_handler(count, 100)
    try:
        return read(connection), steps[0]
    finally:
        connection.set_progress_handler(None, 0)
