"""Results in a real data directory: the stored record, the book, and the two signatures (UA-9)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine import journal, records, signatures
from engine.exceptions import RequestError, SignatureError
from engine.issuing import issue_documents, issue_on_close
from engine.result_signatures import acknowledge, countersign, verify_signature
from engine.results import read_book
from engine.store.sqlite import connect, read_journal
from tests.results_world import ALMATY, GROUP, KYIV, World, local, open_world

T0 = local(KYIV, 2026, 3, 10, 12, 0)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    opened = await open_world(tmp_path)
    yield opened
    await opened.store.close()


async def set_group(world: World, exam_id: str = "ua-t") -> None:
    from engine.book import GroupMember

    members = [GroupMember(*row) for row in GROUP]

    def job(connection: sqlite3.Connection) -> None:
        records.ensure_schema(connection)
        records.replace_group(connection, world.store, exam_id, members, T0)

    await world.store.run(job)


def journal_kinds(world: World) -> list[str]:
    return [entry.kind for entry in read_journal(world.store.path)]


async def test_the_stored_result_carries_the_scheme_and_its_terms(world: World) -> None:
    closed = local(ALMATY, 2026, 1, 31, 10, 0)
    await world.sit("kz-t", "kz-01", "legislation", closed_at=closed, correct=10)
    stored = await world.store.load_result("kz-t/kz-01/legislation")
    assert stored is not None
    assert stored["scheme"] == "kz-prosecutor" and stored["outcome"] == "fail"
    assert (stored["valid_through"], stored["retake_from"]) == ("2027-01-30", "2026-02-28")
    assert stored["closed_at"] == closed


async def test_the_book_reads_results_no_shows_and_who_removed_whom(world: World) -> None:
    await world.sit("ua-t", "ua-01", "professional", closed_at=T0, correct=7)
    await world.sit("ua-t", "ua-02", "professional", closed_at=T0, state="no-show", by="m05")
    await world.sit("ua-t", "ua-03", "professional", closed_at=T0, state="terminated", by="m06")
    book = read_book(world.data_dir, world.exams["ua-t"], world.registry, now=T0)
    assert book.results[("ua-01", "professional")].score == 7.0
    assert book.results[("ua-02", "professional")].outcome.value == "absent"
    assert book.results[("ua-03", "professional")].outcome.value == "annulled"
    assert book.sittings[("ua-03", "professional")].closed_by == "m06"
    outcomes = {r.candidate_id: r.outcome.value for r in book.exam_results}
    assert outcomes == {"ua-01": "incomplete", "ua-02": "absent", "ua-03": "annulled"}


async def test_acknowledged_then_countersigned_both_sealed_and_journaled(world: World) -> None:
    await set_group(world)
    await world.sit("ua-t", "ua-01", "professional", closed_at=T0, correct=7)
    exam = world.exams["ua-t"]
    with pytest.raises(RequestError, match="has not acknowledged the result yet") as early:
        await countersign(world.store, world.registry, exam, "ua-01", "professional", "m04", T0)
    assert early.value.code == "not_acknowledged"
    mine = await acknowledge(world.store, world.registry, exam, "ua-01", "professional", T0 + 60)
    again = await acknowledge(world.store, world.registry, exam, "ua-01", "professional", T0 + 90)
    assert again == mine, "acknowledging twice records it once"
    with pytest.raises(RequestError, match="'stranger' is not a member"):
        await countersign(
            world.store, world.registry, exam, "ua-01", "professional", "stranger", T0
        )
    member = await countersign(
        world.store, world.registry, exam, "ua-01", "professional", "m04", T0 + 120
    )
    assert (member.role, member.signer, member.statement["score"]) == ("member", "m04", 7.0)
    assert journal_kinds(world).count("result-signed-by-candidate") == 1
    assert journal_kinds(world).count("result-signed-by-member") == 1
    await world.store.close()
    checked = verify_signature(world.data_dir, "ua-t/ua-01/professional", "member")
    assert checked.signature == member.signature
    journal.verify(read_journal(world.store.path), journal.read_head(world.data_dir))


async def test_a_doctored_signature_record_no_longer_verifies(world: World) -> None:
    await world.sit("ua-t", "ua-01", "professional", closed_at=T0, correct=7)
    await acknowledge(world.store, world.registry, world.exams["ua-t"], "ua-01", "professional", T0)
    await world.store.close()
    connection = sqlite3.connect(world.store.path)
    (statement,) = connection.execute("SELECT statement FROM result_signatures").fetchone()
    doctored = {**json.loads(statement), "score": 9.0}
    connection.execute("UPDATE result_signatures SET statement = ?", (json.dumps(doctored),))
    connection.commit()
    connection.close()
    with pytest.raises(SignatureError, match="changed after it was sealed"):
        verify_signature(world.data_dir, "ua-t/ua-01/professional", "candidate")


async def test_there_is_nothing_to_sign_without_a_score(world: World) -> None:
    exam = world.exams["ua-t"]
    with pytest.raises(RequestError, match="has no result to sign"):
        await acknowledge(world.store, world.registry, exam, "ua-05", "professional", T0)
    await world.sit("ua-t", "ua-03", "professional", closed_at=T0, state="terminated")
    with pytest.raises(RequestError, match="has no score to sign"):
        await acknowledge(world.store, world.registry, exam, "ua-03", "professional", T0)
    with pytest.raises(RequestError, match="has no part 'essay'"):
        await acknowledge(world.store, world.registry, exam, "ua-03", "essay", T0)


async def test_kz_results_are_not_countersigned_by_a_group(world: World) -> None:
    await world.sit("kz-t", "kz-01", "legislation", closed_at=T0, correct=15)
    with pytest.raises(RequestError, match="does not ask for a member's countersignature"):
        await countersign(
            world.store, world.registry, world.exams["kz-t"], "kz-01", "legislation", "m01", T0
        )


async def test_the_results_sheet_shows_both_signatures_and_verifies(
    world: World, tmp_path: Path
) -> None:
    await set_group(world)
    exam = world.exams["ua-t"]
    await world.sit("ua-t", "ua-01", "professional", closed_at=T0, correct=7)
    await world.sit("ua-t", "ua-02", "professional", closed_at=T0, correct=9)
    await acknowledge(world.store, world.registry, exam, "ua-01", "professional", T0 + 60)
    await countersign(world.store, world.registry, exam, "ua-01", "professional", "m04", T0 + 90)
    book = read_book(world.data_dir, exam, world.registry, now=T0, banks=world.banks)
    (sheet,) = [
        d
        for d in world.registry.for_exam(exam).build_documents(exam, "results-sheet", book)
        if "professional" in d.name and "kyieva" in d.name
    ]
    by_name = {row[1]: row for row in sheet.rows}
    signed = by_name["Шевченко Олена Петрівна"]
    assert signed[2] == "7 з 10 (70 зі 100)"
    assert signed[3].startswith("10.03.2026 12:01 ЕП ")
    assert signed[4].startswith("Член Групи 04 10.03.2026 12:01 ЕП ")
    assert by_name["Бойко Андрій Іванович"][3:5] == ("", "")
    assert [line.name for line in sheet.signature_lines] == [
        "Коваленко Наталія Сергіївна",
        "Марченко Петро Іванович",
    ]
    written = issue_documents(
        world.data_dir, world.registry, exam, tmp_path / "out", now=T0, kinds=["results-sheet"]
    )
    for paths in written.values():
        for path in paths:
            if path.suffix != ".seal":
                signatures.verify_file(path, expected_key=signatures.public_key_of(world.data_dir))


async def test_closing_a_sitting_issues_its_documents_and_journals_their_hashes(
    world: World,
) -> None:
    await world.sit("ua-t", "ua-03", "professional", closed_at=T0, state="terminated", by="m06")
    written = await issue_on_close(
        world.store, world.registry, world.exams["ua-t"], "ua-03", "professional", "terminated", T0
    )
    assert sorted(p.name for p in written) == [
        "removal-act-ua-03-professional.csv",
        "removal-act-ua-03-professional.csv.seal",
        "removal-act-ua-03-professional.html",
    ]
    assert written[0].parent == world.data_dir / "documents" / "ua-t"
    html = next(p for p in written if p.suffix == ".html").read_text()
    assert "Їжакевич Ірина Олегівна" in html and "used a phone" in html
    assert journal_kinds(world)[-1] == "document-issued"
    nothing = await issue_on_close(
        world.store, world.registry, world.exams["ua-t"], "ua-01", "professional", "submitted", T0
    )
    assert nothing == [], "a UA sitting that ends normally issues no act"


async def test_how_a_sitting_ended_decides_over_a_score_stored_for_it(world: World) -> None:
    """A server that scored a no-show's empty answers still yields an absent candidate."""
    await world.sit("ua-t", "ua-02", "professional", closed_at=T0, state="no-show")
    zero = {"candidate": "ua-02", "part": "professional", "score": 0.0, "max_score": 10.0,
            "outcome": "scored", "reasons": [], "details": {}}  # fmt: skip
    await world.store.save_result("ua-t/ua-02/professional", zero, T0)
    book = read_book(world.data_dir, world.exams["ua-t"], world.registry, now=T0)
    assert book.results[("ua-02", "professional")].outcome.value == "absent"


def test_the_records_schema_is_made_once_and_then_only_looked_up(tmp_path: Path) -> None:
    """The admission check ensures the schema for every candidate; once it is there, one lookup
    must do (every statement on the writer gives the GIL up and waits to get it back)."""
    connection = sqlite3.connect(tmp_path / "x.sqlite3", isolation_level=None)
    connection.execute("CREATE TABLE candidates (exam_id TEXT, id TEXT, document TEXT)")
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    records.ensure_schema(connection)
    made = len(statements)
    statements.clear()
    records.ensure_schema(connection)
    assert made == 1 + len(records.SCHEMA) + len(records.INDEXES)
    assert len(statements) == 1 and statements[0].startswith("SELECT count(*) FROM sqlite_master")
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"appeals", "admission_refusals", "candidates_by_document"} <= tables
    connection.execute("DROP TABLE appeals")
    records.ensure_schema(connection)
    assert "appeals" in {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}


def tables_of(connection: sqlite3.Connection) -> set[str]:
    return {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}


def test_the_stores_connection_knows_the_schema_by_its_version(tmp_path: Path) -> None:
    """On the writer's connection a schema found in place costs one pragma, and anything that
    changes the schema, or undoes a change, sends the check back to `sqlite_master`."""
    connection = connect(tmp_path / "x.sqlite3")
    connection.execute("CREATE TABLE candidates (exam_id TEXT, id TEXT, document TEXT)")
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    connection.execute("BEGIN IMMEDIATE")
    records.ensure_schema(connection)  # made inside a batch …
    records.ensure_schema(connection)  # … and found in place there
    connection.execute("ROLLBACK")  # the batch failed: the tables are gone again
    statements.clear()
    records.ensure_schema(connection)
    assert len(statements) == 2 + len(records.SCHEMA) + len(records.INDEXES), statements
    assert "appeals" in tables_of(connection)
    records.ensure_schema(connection)  # found in place, remembered
    statements.clear()
    records.ensure_schema(connection)
    assert statements == ["PRAGMA schema_version"]
    connection.execute("DROP TABLE appeals")
    records.ensure_schema(connection)
    assert "appeals" in tables_of(connection)
    connection.close()
