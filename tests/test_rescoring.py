"""Re-scoring stored responses after a key is corrected, and scoring responses from a file."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine import journal
from engine.banks import load_banks
from engine.exceptions import BankError, ConfigError
from engine.forms import assemble_form
from engine.rescoring import (
    Responses,
    apply,
    read_responses,
    rescore_stored,
    score_responses,
    stored_responses,
)
from engine.store.sqlite import read_journal
from tests.results_world import ALMATY, World, local, open_world

CLOSED = local(ALMATY, 2026, 3, 10, 11, 0)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    opened = await open_world(tmp_path)
    for candidate_id, right in (("kz-01", 14), ("kz-02", 17), ("kz-03", 20)):
        await opened.sit("kz-t", candidate_id, "legislation", closed_at=CLOSED, correct=right)
    yield opened
    await opened.store.close()


def correct_a_key(world: World) -> str:
    """Change the key of the first item on kz-01's form (as if the bank had it wrong)."""
    exam = world.exams["kz-t"]
    part = exam.part("legislation")
    form = assemble_form(world.secrets["kz-t"], exam, part, world.banks["kz-law"], "kz-01")
    item_id = form.items[0].item_id
    old_key = world.banks["kz-law"].by_id[item_id].key
    for path in (world.banks_dir / "kz-law").glob("items-*.toml"):
        text = path.read_text(encoding="utf-8")
        pattern = rf'(id = "{item_id}"\ntags = [^\n]*\nkey = )(\d)'
        changed = re.sub(pattern, lambda m: m.group(1) + str((old_key + 1) % 4 + 1), text)
        if changed != text:
            path.write_text(changed, encoding="utf-8")
    world.banks = load_banks(world.banks_dir)
    assert world.banks["kz-law"].by_id[item_id].key == (old_key + 1) % 4
    return item_id


async def test_stored_responses_rescore_to_the_stored_results(world: World) -> None:
    await world.store.close()
    rescored = rescore_stored(world.data_dir, world.registry, world.exams["kz-t"], world.banks)
    assert [r.sitting_id for r in rescored] == [f"kz-t/kz-0{n}/legislation" for n in (1, 2, 3)]
    assert [r.changed for r in rescored] == [False, False, False]
    assert [r.after.score for r in rescored] == [14.0, 17.0, 20.0]


async def test_a_corrected_key_shows_the_changes_and_writes_nothing_until_applied(
    world: World,
) -> None:
    correct_a_key(world)
    head_before = journal.read_head(world.data_dir)
    body_before = await world.store.load_result("kz-t/kz-01/legislation")
    exam = world.exams["kz-t"]
    rescored = rescore_stored(world.data_dir, world.registry, exam, world.banks)
    changed = {r.sitting_id: r for r in rescored if r.changed}
    assert "kz-t/kz-01/legislation" in changed, "kz-01 answered that item right: now wrong"
    first = changed["kz-t/kz-01/legislation"]
    assert first.before is not None and (first.before.score, first.after.score) == (14.0, 13.0)
    assert journal.read_head(world.data_dir) == head_before
    assert await world.store.load_result("kz-t/kz-01/legislation") == body_before
    with pytest.raises(ConfigError, match="say why"):
        await apply(world.store, world.registry, exam, rescored, " ", CLOSED + 86400)
    written = await apply(
        world.store, world.registry, exam, rescored, "key of item corrected", CLOSED + 86400
    )
    assert [(w.sitting_id, w.score_before, w.score_after) for w in written] == [
        (r.sitting_id, r.before.score, r.after.score) for r in changed.values() if r.before
    ]
    stored = await world.store.load_result("kz-t/kz-01/legislation")
    assert stored is not None and stored["score"] == 13.0 and stored["retake_from"] == "2026-04-10"
    events = [e for e in read_journal(world.store.path) if e.kind == "score-changed"]
    assert journal.decode_body(events[0].body)[4]["cause"] == "key of item corrected"
    again = rescore_stored(world.data_dir, world.registry, exam, world.banks)
    assert not any(r.changed for r in again)


async def test_a_score_an_appeal_decided_is_held(world: World) -> None:
    from engine import records

    after = {**(await world.store.load_result("kz-t/kz-01/legislation") or {})}
    after["details"] = {**after["details"], "appeal": {"number": 4, "score_before": 14.0}}

    def decided_by_appeal(connection: sqlite3.Connection) -> None:
        records.ensure_schema(connection)
        records.change_result(
            connection, world.store, "kz-t/kz-01/legislation", after, "appeal 4", CLOSED
        )

    await world.store.run(decided_by_appeal)
    correct_a_key(world)
    rescored = rescore_stored(world.data_dir, world.registry, world.exams["kz-t"], world.banks)
    held = next(r for r in rescored if r.sitting_id == "kz-t/kz-01/legislation")
    assert held.changed and held.held_by == "appeal 4"
    assert await apply(world.store, world.registry, world.exams["kz-t"], [held], "x", CLOSED) == []


async def test_responses_written_to_a_file_score_like_the_stored_ones(
    world: World, tmp_path: Path
) -> None:
    exam = world.exams["kz-t"]
    stored = stored_responses(world.data_dir, exam, world.banks)
    path = tmp_path / "responses.jsonl"
    path.write_text(
        "\n".join(
            json.dumps(
                {
                    "candidate": r.candidate_id,
                    "part": r.part_id,
                    "items": list(r.items),
                    "answers": dict(r.answers),
                    "state": r.state,
                }
            )
            for r in stored
        )
        + "\n",
        encoding="utf-8",
    )
    loaded = read_responses(path)
    assert loaded == [
        Responses(r.candidate_id, r.part_id, r.items, r.answers, r.state) for r in stored
    ]
    results = score_responses(world.registry, exam, world.banks, loaded)
    for result in results:
        stored_body = await world.store.load_result(f"kz-t/{result.candidate_id}/legislation")
        assert stored_body is not None
        assert result.to_json() == {k: v for k, v in stored_body.items() if k in result.to_json()}


def test_a_bad_responses_file_lists_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    lines = [
        '{"candidate": "c1", "part": "p", "answers": {"i1": 1}}',
        "not json",
        '{"candidate": "c1", "part": "p", "answers": {"i1": 2}}',
        '{"candidate": "c2", "part": "p", "items": ["i1"], "answers": {"i9": 0}}',
        '{"candidate": "", "part": "p", "answers": {"i1": "B"}}',
        '{"candidate": "c3", "part": "p", "state": "paused", "colour": 1}',
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(BankError) as raised:
        read_responses(path)
    found = [(int(p.file.rsplit(":", 1)[1]), p.reason) for p in raised.value.problems]
    expected = [
        (2, "not JSON"),
        (3, "c1 / p appears twice"),
        (4, "answers to items not on the form: i9"),
        (5, "'candidate' must be a non-empty string"),
        (5, "option index (0-based) or null"),
        (6, "unknown field(s) colour"),
        (6, "'state' must be one of submitted, expired, terminated, not 'paused'"),
    ]
    assert len(found) == len(expected)
    for (line, reason), (want_line, want) in zip(found, expected, strict=True):
        assert line == want_line and want in reason


def test_responses_for_a_part_the_exam_lacks_or_items_the_bank_lacks_are_refused(
    tmp_path: Path,
) -> None:
    import asyncio

    async def setup() -> World:
        return await open_world(tmp_path)

    world = asyncio.run(setup())
    asyncio.run(world.store.close())
    exam = world.exams["kz-t"]
    with pytest.raises(ConfigError, match="has no part essay"):
        score_responses(world.registry, exam, world.banks, [Responses("c1", "essay", (), {})])
    with pytest.raises(ConfigError, match="item 'ghost' is not in bank 'kz-law'"):
        score_responses(
            world.registry, exam, world.banks, [Responses("c1", "legislation", ("ghost",), {})]
        )
