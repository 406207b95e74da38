"""Appeals (UA-16): who may file, by when, quorum and majority, and a score written through."""

from __future__ import annotations

import datetime
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest

from engine import journal, records
from engine.admission import check_admission
from engine.appeals import decide_appeal, decision_deadline, file_appeal, filing_deadline, tally
from engine.book import AppealRecord, GroupMember
from engine.exceptions import AdmissionRefused, AppealRefused, RequestError
from engine.results import read_book
from engine.schemes import AppealPolicy
from engine.store.sqlite import read_journal
from tests.results_world import GROUP, KYIV, World, local, open_world

SHOWN = local(KYIV, 2026, 3, 10, 14, 0)
POLICY = AppealPolicy("UA-16", "Europe/Kyiv", min_group_size=15)
MEMBERS = [GroupMember(*row) for row in GROUP]
TEN = [m.id for m in MEMBERS[:10]]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    opened = await open_world(tmp_path)
    await set_group(opened, MEMBERS)
    await opened.sit("ua-t", "ua-01", "professional", closed_at=SHOWN, correct=6)
    yield opened
    await opened.store.close()


async def set_group(world: World, members: list[GroupMember]) -> None:
    def job(connection: sqlite3.Connection) -> None:
        records.ensure_schema(connection)
        records.replace_group(connection, world.store, "ua-t", members, SHOWN)

    await world.store.run(job)


async def file(world: World, at: float, **overrides: str) -> AppealRecord:
    arguments = {
        "candidate_id": "ua-01",
        "filed_by": "ua-01",
        "subject": "result",
        "grounds": "item 7 has two correct options",
        "part_id": "professional",
        **overrides,
    }
    return await file_appeal(world.store, world.registry, world.exams["ua-t"], now=at, **arguments)


def test_the_deadlines_are_local_days() -> None:
    midnight = local(KYIV, 2026, 3, 11, 0, 0)
    assert filing_deadline(POLICY, "result", SHOWN) == midnight
    assert filing_deadline(POLICY, "non-admission", SHOWN) == local(KYIV, 2026, 3, 12, 0, 0)
    assert decision_deadline(POLICY, local(KYIV, 2026, 3, 10, 23, 59)) == local(
        KYIV, 2026, 3, 12, 0, 0
    )


async def test_an_appeal_on_the_day_is_accepted_and_one_minute_late_is_refused(
    world: World,
) -> None:
    late = await _refused(file(world, local(KYIV, 2026, 3, 11, 0, 1)))
    assert "1 min after the deadline" in late.message and late.rule == "UA-16"
    assert "accepted until 10.03.2026 23:59 inclusive" in late.message
    accepted = await file(world, local(KYIV, 2026, 3, 10, 23, 59))
    assert accepted.number == 1 and accepted.decide_by == local(KYIV, 2026, 3, 12, 0, 0)
    kinds = [e.kind for e in read_journal(world.store.path)]
    assert kinds[-2:] == ["appeal-refused", "appeal-filed"]


async def _refused(attempt: Awaitable[object]) -> AppealRefused:
    with pytest.raises(AppealRefused) as raised:
        await attempt
    return raised.value


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"filed_by": "ua-01-brother"}, "filed by the candidate personally"),
        ({"subject": "removal"}, "removal from testing are not considered"),
        ({"subject": "the weather"}, "'the weather' cannot be appealed"),
        ({"grounds": "  "}, "must state its grounds"),
        ({"candidate_id": "nobody", "filed_by": "nobody"}, "'nobody' is not a candidate"),
        ({"part_id": "aptitude"}, "has no result of the aptitude test"),
        ({"subject": "non-admission"}, "no notice of non-admission is recorded"),
    ],
)
async def test_appeals_the_rules_do_not_accept(
    world: World, overrides: dict[str, str], message: str
) -> None:
    refused = await _refused(file(world, SHOWN + 60, **overrides))
    assert message in refused.message


async def test_the_result_of_a_removed_candidate_cannot_be_appealed(world: World) -> None:
    await world.sit("ua-t", "ua-02", "professional", closed_at=SHOWN, state="terminated")
    refused = await _refused(file(world, SHOWN + 60, candidate_id="ua-02", filed_by="ua-02"))
    assert "removal" in refused.message


async def test_one_open_appeal_per_matter(world: World) -> None:
    await file(world, SHOWN + 60)
    refused = await _refused(file(world, SHOWN + 120))
    assert "appeal 1 on the same matter awaits its decision" in refused.message


async def test_the_kz_rules_give_no_appeal(world: World) -> None:
    await world.sit("kz-t", "kz-01", "legislation", closed_at=SHOWN, correct=10)
    with pytest.raises(AppealRefused, match="provide no appeal"):
        await file_appeal(
            world.store, world.registry, world.exams["kz-t"], candidate_id="kz-01",
            filed_by="kz-01", subject="result", grounds="g", part_id="legislation", now=SHOWN,
        )  # fmt: skip


# --- the group's decision ----------------------------------------------------------------------


def votes(uphold: int, present: list[str] = TEN) -> dict[str, str]:
    return {m: ("uphold" if i < uphold else "reject") for i, m in enumerate(present)}


def test_quorum_is_two_thirds_of_the_group_and_majority_of_those_present() -> None:
    counted = tally(POLICY, MEMBERS, TEN, votes(6))
    assert (counted.quorum_needed, counted.has_quorum, counted.upheld) == (10, True, True)
    assert not tally(POLICY, MEMBERS, TEN, votes(5)).upheld, "5 of 10 is not a majority"
    nine = TEN[:9]
    assert not tally(POLICY, MEMBERS, nine, votes(9, nine)).has_quorum
    abstaining = {**votes(5), TEN[9]: "abstain"}
    assert not tally(POLICY, MEMBERS, TEN, abstaining).upheld


@pytest.mark.parametrize(
    ("present", "cast", "message"),
    [
        (TEN, {**votes(6), "m10": "maybe"}, "votes must be one of"),
        (TEN, {k: v for k, v in votes(6).items() if k != "m10"}, "no vote from ['m10']"),
        ([*TEN[:9], "x99"], votes(6, [*TEN[:9], "x99"]), "not members of the working group: x99"),
        ([*TEN, "m01"], votes(6), "listed as present twice"),
    ],
)
def test_votes_must_come_from_every_member_present(
    present: list[str], cast: dict[str, str], message: str
) -> None:
    with pytest.raises(RequestError, match=re.escape(message)):
        tally(POLICY, MEMBERS, present, cast)


async def decide(world: World, number: int = 1, **overrides: Any) -> AppealRecord:
    arguments: dict[str, Any] = {
        "present": TEN,
        "votes": votes(6),
        "decision": "item 7 is ambiguous; one point is added",
        "now": local(KYIV, 2026, 3, 11, 10, 0),
        **overrides,
    }
    return await decide_appeal(
        world.store, world.registry, world.exams["ua-t"], number, **arguments
    )


async def test_a_group_smaller_than_15_cannot_decide(world: World) -> None:
    await file(world, SHOWN + 60)
    await set_group(world, MEMBERS[:14])
    with pytest.raises(RequestError, match="has 14 members; at least 15"):
        await decide(world, present=TEN)


async def test_without_quorum_nothing_is_decided(world: World) -> None:
    await file(world, SHOWN + 60)
    with pytest.raises(RequestError, match="no quorum: 9 of 15 members present, 10 needed"):
        await decide(world, present=TEN[:9], votes=votes(9, TEN[:9]))
    (appeal,) = await world.store.run(lambda c: records.load_appeals(c, "ua-t"))
    assert appeal.status == "filed"


async def test_an_upheld_change_goes_into_results_protocol_sheet_and_audit(world: World) -> None:
    await file(world, SHOWN + 60)
    decided = await decide(world, new_score=7, candidate_present=True)
    assert (decided.status, decided.score_before, decided.score_after) == ("upheld", 6.0, 7.0)
    stored = await world.store.load_result("ua-t/ua-01/professional")
    assert stored is not None and stored["score"] == 7.0
    assert stored["details"]["appeal"] == {"number": 1, "score_before": 6.0}
    changed = [e for e in read_journal(world.store.path) if e.kind == "score-changed"]
    data = journal.decode_body(changed[-1].body)[4]
    assert (data["score_before"], data["score_after"], data["cause"]) == (6.0, 7.0, "appeal 1")
    assert json.loads(data["before"])["score"] == 6.0
    await world.store.close()
    book = read_book(world.data_dir, world.exams["ua-t"], world.registry, now=SHOWN)
    scheme = world.registry.for_exam(world.exams["ua-t"])
    (protocol,) = scheme.build_documents(book.exam, "appeal-protocol", book)
    fields = dict(protocol.fields)
    assert fields["Присутні"] == "10 (кворум — не менше 10: є)"
    assert fields["Голосували"] == "за задоволення — 6, проти — 4, утрималися — 0"
    assert fields["Рішення"].startswith("скаргу задоволено.")
    assert fields["Зміна кількості балів"].startswith("з 6 на 7")
    assert fields["Кандидат на засіданні"] == "присутній"
    assert len(protocol.rows) == 10
    sheets = scheme.build_documents(book.exam, "results-sheet", book)
    (row,) = [
        r for s in sheets for r in s.rows if r[1] == "Шевченко Олена Петрівна" and "з 10" in r[2]
    ]
    assert row[2].startswith("7 з 10") and "бал змінено з 6 на 7 (appeal 1)" in row[5]
    journal.verify(read_journal(world.store.path), journal.read_head(world.data_dir))


async def test_a_rejected_appeal_cannot_change_the_score(world: World) -> None:
    await file(world, SHOWN + 60)
    with pytest.raises(RequestError, match=r"not upheld \(5 of 10 for\)"):
        await decide(world, votes=votes(5), new_score=7)
    decided = await decide(world, votes=votes(5))
    assert decided.status == "rejected"
    stored = await world.store.load_result("ua-t/ua-01/professional")
    assert stored is not None and stored["score"] == 6.0
    with pytest.raises(RequestError, match="already decided"):
        await decide(world)


async def test_a_new_score_outside_the_maximum_is_refused(world: World) -> None:
    await file(world, SHOWN + 60)
    with pytest.raises(RequestError, match=r"outside 0\.\.10"):
        await decide(world, new_score=11)


async def test_a_late_decision_is_recorded_and_says_so(world: World) -> None:
    await file(world, SHOWN + 60)
    await decide(world, now=local(KYIV, 2026, 3, 13, 9, 0))
    await world.store.close()
    book = read_book(world.data_dir, world.exams["ua-t"], world.registry, now=SHOWN)
    (protocol,) = world.registry.for_exam(book.exam).build_documents(
        book.exam, "appeal-protocol", book
    )
    assert "пізніше наступного дня" in dict(protocol.fields)["Строк розгляду"]


# --- non-admission -----------------------------------------------------------------------------


async def test_an_upheld_non_admission_appeal_lets_the_candidate_in(world: World) -> None:
    exam = world.exams["ua-t"]
    await world.sit("ua-t", "ua-02", "professional", closed_at=SHOWN, state="no-show")
    person = world.candidates["ua-t"]["ua-02"]
    refused_at = local(KYIV, 2026, 3, 10, 15, 0)
    with pytest.raises(AdmissionRefused, match="did not appear in time") as refused:
        await check_admission(
            world.store, world.registry, exam, person, refused_at, part_id="aptitude"
        )
    assert refused.value.rule == "UA-7" and refused.value.code == "not_admitted"
    late = await _refused(
        file(world, local(KYIV, 2026, 3, 12, 0, 0), candidate_id="ua-02", filed_by="ua-02",
             subject="non-admission")
    )  # fmt: skip
    assert "after the deadline for the non-admission notice of 10.03.2026 15:00" in late.message
    appeal = await file(
        world, local(KYIV, 2026, 3, 11, 18, 0), candidate_id="ua-02", filed_by="ua-02",
        subject="non-admission", grounds="the bus broke down; a police note is attached",
    )  # fmt: skip
    assert appeal.part_id is None
    await decide(world, appeal.number, votes=votes(8))
    admitted = await check_admission(
        world.store, world.registry, exam, person, refused_at + 86400, part_id="aptitude"
    )
    assert admitted.admitted


async def test_every_refusal_is_a_recorded_notice(world: World) -> None:
    await world.sit("ua-t", "ua-02", "professional", closed_at=SHOWN, state="terminated")
    person = world.candidates["ua-t"]["ua-02"]
    for minutes in (0, 5):
        with pytest.raises(AdmissionRefused, match="UA-3"):
            await check_admission(
                world.store, world.registry, world.exams["ua-t"], person,
                SHOWN + 60 * minutes, part_id="aptitude",
            )  # fmt: skip
    notices = await world.store.run(
        lambda c: c.execute("SELECT at, rule FROM admission_refusals").fetchall()
    )
    assert notices == [(SHOWN, "UA-3"), (SHOWN + 300, "UA-3")]
    assert datetime.date(2026, 3, 10) == datetime.datetime.fromtimestamp(notices[0][0], KYIV).date()
