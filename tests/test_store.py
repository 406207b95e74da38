"""The SQLite store: durability settings, group commit, idempotent restore, the journal."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import sqlite3
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from engine import journal
from engine.exceptions import AuthError, StoreError
from engine.model import Candidate
from engine.sitting import AnswerRecord, SittingEvent, Snapshot, State
from engine.store.file_process import Appended
from engine.store.sqlite import SQLiteStore, connect, read_journal


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    opened = SQLiteStore(tmp_path)
    await opened.open()
    yield opened
    await opened.close()


def snapshot(n: int, last_seq: int = 0) -> Snapshot:
    return Snapshot(
        f"e/c{n}/p", "e", f"c{n}", "p", 60.0, State.RUNNING, "kk", 1.0, 2.0, last_seq=last_seq
    )


def answer_event(n: int, seq: int) -> SittingEvent:
    record = AnswerRecord(f"item-{seq}", seq % 4, False, seq, 10.0 + seq)
    data = {"seq": seq, "item": record.item_id, "choice": record.choice, "flag": False}
    return SittingEvent(f"e/c{n}/p", "answer", record.at, data, record)


def test_connections_use_wal_and_full_sync(tmp_path: Path) -> None:
    connection = connect(tmp_path / "x.sqlite3")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


async def test_many_concurrent_answers_share_few_commits(store: SQLiteStore) -> None:
    writes = [
        store.record(answer_event(n, seq), snapshot(n, seq))
        for seq in range(1, 21)
        for n in range(50)
    ]
    seqs = await asyncio.gather(*writes)
    assert sorted(seqs) == list(range(1, 1001))
    assert store.jobs_committed == 1000
    assert store.commits < 1000 / 5, f"{store.commits} commits for 1000 answers"


async def test_a_batch_of_any_size_lands_row_for_row(store: SQLiteStore) -> None:
    """Batches are cut into statements of 128 rows and the rest: 777 records must all land, in
    order."""
    writes = [store.record(answer_event(n, 1), snapshot(n, 1)) for n in range(777)]
    assert sorted(await asyncio.gather(*writes)) == list(range(1, 778))
    for n in (0, 127, 128, 511, 776):
        stored = await store.load_sitting(f"e/c{n}/p")
        assert stored is not None and stored.snapshot.last_seq == 1
        assert [(a.seq, a.item_id) for a in stored.answers] == [(1, "item-1")]
    report = journal.verify(read_journal(store.path), None)
    assert report.events == 777


@pytest.mark.parametrize("count", [1, 30, 127, 128, 129, 300])
async def test_a_run_of_rows_is_one_statement_per_128(store: SQLiteStore, count: int) -> None:
    """Every statement gives the GIL up and waits to get it back: a run of rows must not be cut
    into more statements than the size limit asks for."""
    statements: list[str] = []

    def job(connection: sqlite3.Connection) -> int:
        connection.execute("CREATE TABLE IF NOT EXISTS pairs (a INTEGER PRIMARY KEY, b TEXT)")
        connection.set_trace_callback(statements.append)
        try:
            store.insert_many(
                connection, "INSERT INTO pairs VALUES ", [(n, f"b{n}") for n in range(count)]
            )
        finally:
            connection.set_trace_callback(None)
        return int(connection.execute("SELECT count(*), sum(a) FROM pairs").fetchone()[1])

    assert await store.run(job) == count * (count - 1) // 2
    inserts = [text for text in statements if text.startswith("INSERT INTO pairs")]
    assert len(inserts) == -(-count // 128)


async def test_a_sitting_reads_back_with_every_answer(store: SQLiteStore) -> None:
    for seq in range(1, 6):
        await store.record(answer_event(1, seq), snapshot(1, seq))
    stored = await store.load_sitting("e/c1/p")
    assert stored is not None
    assert stored.snapshot == snapshot(1, 5)
    assert [a.seq for a in stored.answers] == [1, 2, 3, 4, 5]
    assert [s.snapshot.sitting_id for s in await store.open_sittings()] == ["e/c1/p"]


async def test_a_failing_job_does_not_undo_the_others(store: SQLiteStore) -> None:
    await store.record(answer_event(1, 1), snapshot(1, 1))
    duplicate = store.record(answer_event(1, 1), snapshot(1, 1))  # seq 1 again
    good = store.record(answer_event(2, 1), snapshot(2, 1))
    results = await asyncio.gather(duplicate, good, return_exceptions=True)
    assert isinstance(results[0], StoreError) and "stored already" in str(results[0])
    assert isinstance(results[1], int)
    report = journal.verify(read_journal(store.path), journal.read_head(store.data_dir))
    assert report.events == 2, "the failed job's journal entry was rolled back with it"


async def test_access_codes_redeem_once(store: SQLiteStore) -> None:
    candidates = [Candidate("c1", "e", "Test Candidate", "site")]
    secret = await store.register_exam("e", candidates, {"c1": "hash-1"})
    assert len(secret) == 32
    assert await store.register_exam("e", candidates, {}) == secret, "the secret is kept"
    redeemed = await store.redeem_code("hash-1", 5.0)
    assert (redeemed.exam_id, redeemed.candidate_id) == ("e", "c1")
    with pytest.raises(AuthError, match="already used"):
        await store.redeem_code("hash-1", 6.0)
    with pytest.raises(AuthError, match="unknown access code"):
        await store.redeem_code("hash-2", 6.0)
    assert await store.unused_codes("e") == set()


async def test_the_journal_head_catches_up_once_the_writer_is_idle(store: SQLiteStore) -> None:
    """The head may lag the database by a moment under load, never lead it or stay behind."""
    for seq in range(1, 4):
        await store.record(answer_event(1, seq), snapshot(1, seq))
    head = journal.read_head(store.data_dir)
    for _ in range(100):
        if head is not None and head.seq == 3:
            break
        assert head is None or head.seq < 3, "the head never leads the database"
        await asyncio.sleep(0.05)
        head = journal.read_head(store.data_dir)
    assert head is not None and head.seq == 3
    entries = list(read_journal(store.path))
    assert entries[-1].chain == head.chain


async def test_closing_writes_the_head_of_the_last_commit(tmp_path: Path) -> None:
    opened = SQLiteStore(tmp_path)
    await opened.open()
    for seq in range(1, 30):
        await opened.record(answer_event(1, seq), snapshot(1, seq))
    await opened.close()
    head = journal.read_head(tmp_path)
    assert head is not None and head.seq == 29
    assert journal.verify(read_journal(opened.path), head).events == 29


async def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path)
    await first.open()
    await first.record(answer_event(1, 1), snapshot(1, 1))
    await first.close()
    second = SQLiteStore(tmp_path)
    await second.open()
    await second.record(answer_event(1, 2), snapshot(1, 2))
    await second.close()
    report = journal.verify(read_journal(second.path), journal.read_head(tmp_path))
    assert report.events == 2


async def test_the_sittings_row_follows_every_change_within_one_commit(
    store: SQLiteStore,
) -> None:
    """Only changed columns are written; a state that changes and changes back still lands."""
    await store.record(answer_event(1, 1), snapshot(1, 1))
    running = snapshot(1, 1)
    paused = SittingEvent("e/c1/p", "paused", 12.0)
    resumed = SittingEvent("e/c1/p", "resumed", 13.0)
    refused = store.record(answer_event(1, 1), snapshot(1, 7))  # seq 1 again: refused
    await asyncio.gather(
        refused,
        store.record(paused, replace(running, state=State.PAUSED, paused_at=12.0)),
        store.record(resumed, replace(running, paused_total_s=1.0)),
        return_exceptions=True,
    )
    stored = await store.load_sitting("e/c1/p")
    assert stored is not None
    assert stored.snapshot == replace(running, paused_total_s=1.0)
    await store.record(answer_event(1, 2), replace(running, paused_total_s=1.0, last_seq=2))
    stored = await store.load_sitting("e/c1/p")
    assert stored is not None
    assert stored.snapshot == replace(running, paused_total_s=1.0, last_seq=2)


async def test_a_sittings_events_come_back_in_journal_order_answers_included(
    store: SQLiteStore,
) -> None:
    """Answers are found through the answers table, other events through the partial index."""
    await store.record(SittingEvent("e/c1/p", "started", 2.0), snapshot(1))
    await store.record(answer_event(1, 1), snapshot(1, 1))
    await store.record(answer_event(2, 1), snapshot(2, 1))  # another sitting's, between
    await store.record(SittingEvent("e/c1/p", "paused", 12.0, {"by": "p1"}), snapshot(1, 1))
    await store.record(answer_event(1, 2), snapshot(1, 2))
    events = await store.events_of("e/c1/p")
    assert [(e["seq"], e["kind"]) for e in events] == [
        (1, "started"),
        (2, "answer"),
        (4, "paused"),
        (5, "answer"),
    ]
    assert events[2]["data"] == {"by": "p1"}
    assert events[3]["data"] == {"seq": 2, "item": "item-2", "choice": 2, "flag": False}


async def test_an_event_must_carry_an_answer_exactly_when_it_is_one(store: SQLiteStore) -> None:
    with pytest.raises(StoreError, match="carry an answer"):
        store.record_soon(SittingEvent("e/c1/p", "answer", 1.0, {"seq": 1}), snapshot(1, 1))
    stray = replace(answer_event(1, 1), kind="paused")
    with pytest.raises(StoreError, match="carry an answer"):
        store.record_soon(stray, snapshot(1, 1))
    assert await store.events_of("e/c1/p") == []


async def test_a_database_with_the_old_full_index_is_moved_to_the_partial_one(
    tmp_path: Path,
) -> None:
    old = SQLiteStore(tmp_path)
    await old.open()
    await old.record(answer_event(1, 1), snapshot(1, 1))
    await old.close()
    connection = sqlite3.connect(old.path)
    connection.execute("DROP INDEX journal_events_by_sitting")
    connection.execute("CREATE INDEX journal_by_sitting ON journal (sitting_id, seq)")
    connection.close()
    reopened = SQLiteStore(tmp_path)
    await reopened.open()
    await reopened.record(SittingEvent("e/c1/p", "paused", 12.0), snapshot(1, 1))
    assert [e["kind"] for e in await reopened.events_of("e/c1/p")] == ["answer", "paused"]
    await reopened.close()
    connection = sqlite3.connect(old.path)
    indexes = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    connection.close()
    assert "journal_events_by_sitting" in indexes and "journal_by_sitting" not in indexes


async def test_the_log_is_copied_into_the_database_while_the_store_is_open(
    store: SQLiteStore,
) -> None:
    """The checkpointer's thread, not a commit, moves committed pages into the main file."""
    await asyncio.gather(*(store.record(answer_event(n, 1), snapshot(n, 1)) for n in range(300)))
    for _ in range(100):
        if store.stats()["checkpoints"] > 0:
            break
        await asyncio.sleep(0.05)
    # immutable=1 reads the main database file alone, ignoring the write-ahead log.
    main_file_only = sqlite3.connect(f"file:{store.path}?mode=ro&immutable=1", uri=True)
    try:
        events = main_file_only.execute("SELECT COUNT(*) FROM journal").fetchone()[0]
    finally:
        main_file_only.close()
    assert events == 300


def answer_rows_on_disk(store: SQLiteStore) -> int:
    """The answers table as a reader beside the server sees it."""
    reader = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        return int(reader.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
    finally:
        reader.close()


async def test_held_back_answers_reach_the_table_within_the_lag_when_idle(
    store: SQLiteStore,
) -> None:
    await asyncio.gather(*(store.record(answer_event(n, 1), snapshot(n, 1)) for n in range(20)))
    assert answer_rows_on_disk(store) == 0, "held back: the journal has them"
    for _ in range(60):
        if answer_rows_on_disk(store) == 20:
            break
        await asyncio.sleep(0.1)
    assert answer_rows_on_disk(store) == 20


async def test_closing_a_sitting_writes_its_answers_in_the_same_commit(store: SQLiteStore) -> None:
    for seq in (1, 2):
        await store.record(answer_event(1, seq), snapshot(1, seq))
    submitted = replace(snapshot(1, 2), state=State.SUBMITTED, closed_at=20.0)
    await store.record(SittingEvent("e/c1/p", "submitted", 20.0), submitted)
    assert answer_rows_on_disk(store) == 2


async def test_answers_left_only_in_the_journal_by_a_crash_are_indexed_on_open(
    tmp_path: Path,
) -> None:
    """The writer's process dies right after its acknowledged answers; reopening finds them."""
    script = f"""
import asyncio, os, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from pathlib import Path
from engine.store.sqlite import SQLiteStore
from test_store import answer_event, snapshot

async def main():
    store = SQLiteStore(Path({str(tmp_path)!r}))
    await store.open()
    for seq in range(1, 6):
        await store.record(answer_event(1, seq), snapshot(1, seq))
    os._exit(0)  # no close: whatever was held back stays held back

asyncio.run(main())
"""
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
    assert await process.wait() == 0
    reader = sqlite3.connect(tmp_path / SQLiteStore.FILE_NAME)
    before = reader.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
    reader.close()
    assert before == 0, "the crash left the rows unwritten (the test would prove nothing)"
    reopened = SQLiteStore(tmp_path)
    await reopened.open()
    stored = await reopened.load_sitting("e/c1/p")
    refused = reopened.record(answer_event(1, 5), snapshot(1, 5))
    with pytest.raises(StoreError, match="stored already"):
        await refused
    await reopened.close()
    assert stored is not None
    assert [(a.seq, a.item_id, a.choice) for a in stored.answers] == [
        (seq, f"item-{seq}", seq % 4) for seq in range(1, 6)
    ]
    assert stored.snapshot.last_seq == 5, "last_seq waits with the answers rows it follows"


def sittings_writes(statements: list[str]) -> list[str]:
    return [s for s in statements if "INTO sittings" in s or "UPDATE sittings" in s]


async def test_an_answer_leaves_its_sittings_row_to_the_answers_write(store: SQLiteStore) -> None:
    """An answer changes only last_seq: it is written with the answers rows, once per sitting
    for all its answers held, never lowering what a whole row wrote meanwhile."""
    await store.record(answer_event(1, 1), snapshot(1, 1))  # first seen: the whole row
    statements: list[str] = []
    await store.run(lambda connection: connection.set_trace_callback(statements.append))
    for seq in range(2, 7):
        await store.record(answer_event(1, seq), snapshot(1, seq))
    assert sittings_writes(statements) == [], "five answers, no write to the sittings table"
    paused = replace(snapshot(1, 6), state=State.PAUSED, paused_at=30.0)
    await store.record(SittingEvent("e/c1/p", "paused", 30.0), paused)
    stored = await store.load_sitting("e/c1/p")  # a reader: what is held is written first
    await store.run(lambda connection: connection.set_trace_callback(None))
    assert stored is not None
    assert (stored.snapshot.last_seq, stored.snapshot.state) == (6, State.PAUSED)
    assert [a.seq for a in stored.answers] == [1, 2, 3, 4, 5, 6]
    writes = sittings_writes(statements)
    assert len(writes) == 2, writes  # the pause's own columns, then last_seq with the answers
    assert "last_seq" not in writes[0] and "max(sittings.last_seq" in writes[1]


async def test_closing_right_after_an_answer_writes_its_row(tmp_path: Path) -> None:
    """Closed within the lag, before the writer ever idled: the row is written on close."""
    store = SQLiteStore(tmp_path)
    await store.open()
    await store.record(answer_event(1, 1), snapshot(1, 1))
    await store.close()
    assert answer_rows_on_disk(store) == 1


def _note_in_meta(connection: sqlite3.Connection, written: list[tuple[str, Appended]]) -> list[str]:
    """A joint job: one row per appended upload, named by its item, holding its digest."""
    store_rows = [(f"note-{name}", appended.digest.hex()) for name, appended in written]
    connection.executemany("INSERT INTO meta VALUES (?, ?)", store_rows)
    return [appended.digest.hex() for _, appended in written]


def _notes(store: SQLiteStore) -> dict[str, str]:
    reader = sqlite3.connect(store.path)
    rows = reader.execute("SELECT key, value FROM meta WHERE key LIKE 'note-%'").fetchall()
    reader.close()
    return {key.removeprefix("note-"): value for key, value in rows}


def _read(store: SQLiteStore, appended: Appended, size: int) -> bytes:
    with (store.data_dir / appended.segment).open("rb") as segment:
        segment.seek(appended.offset)
        return segment.read(size)


async def test_an_append_is_on_disk_before_its_job_commits_with_the_data_s_digest(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "data")
    await store.open()
    data = b"\x1aE\xdf\xa3" + bytes(range(256)) * 40
    seen: list[Appended] = []

    def job(connection: sqlite3.Connection, written: list[tuple[str, Appended]]) -> list[str]:
        ((_, appended),) = written
        assert appended.segment.startswith(f"{SQLiteStore.SEGMENTS}/"), "relative to the data"
        assert _read(store, appended, len(data)) == data, "written before its job runs"
        seen.append(appended)
        return _note_in_meta(connection, written)

    outcome = await store.run_after_appending(data, job, "chunk")
    assert outcome == hashlib.sha256(data).hexdigest()
    await store.close()
    assert _notes(store) == {"chunk": outcome}
    assert seen[0].offset == 0


async def test_appends_done_meanwhile_share_one_call_and_a_failing_one_fails_alone(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "data")
    await store.open()
    calls: list[list[str]] = []

    def job(connection: sqlite3.Connection, written: list[tuple[str, Appended]]) -> list[str]:
        calls.append([name for name, _ in written])
        if any(name == "bad" for name, _ in written):
            connection.execute("INSERT INTO meta VALUES ('partly', 'written')")
            raise ValueError("the bad one")
        return _note_in_meta(connection, written)

    names = [f"f{n}" for n in range(30)]
    names.insert(17, "bad")
    outcomes = await asyncio.gather(
        *(store.run_after_appending(name.encode(), job, name) for name in names),
        return_exceptions=True,
    )
    await store.close()
    assert max(len(call) for call in calls) > 1, "appends finished together are recorded together"
    for name, outcome in zip(names, outcomes, strict=True):
        if name == "bad":
            assert isinstance(outcome, ValueError)
        else:
            assert outcome == hashlib.sha256(name.encode()).hexdigest()
    notes = _notes(store)
    assert sorted(notes) == sorted(name for name in names if name != "bad")
    reader = sqlite3.connect(store.path)
    assert reader.execute("SELECT 1 FROM meta WHERE key = 'partly'").fetchone() is None
    reader.close()


async def test_a_failed_append_is_raised_and_its_job_never_runs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "media").mkdir(parents=True)
    (data / SQLiteStore.SEGMENTS).write_bytes(b"")  # a file where the segments go
    store = SQLiteStore(data)
    await store.open()
    ran: list[str] = []

    def job(connection: sqlite3.Connection, written: list[tuple[str, Appended]]) -> list[None]:
        ran.extend(name for name, _ in written)
        return [None for _ in written]

    with pytest.raises(OSError) as raised:
        await store.run_after_appending(b"x", job, "under a file")
    assert raised.value.errno in (errno.EEXIST, errno.ENOTDIR)
    assert ran == []
    assert await store.run(lambda connection: 7) == 7, "the store serves on"
    (data / SQLiteStore.SEGMENTS).unlink()
    assert await store.run_after_appending(b"x", job, "once it is put right") is None
    assert ran == ["once it is put right"]
    await store.close()


async def test_closing_finishes_the_writes_already_sent(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "data")
    await store.open()
    payloads = [f"chunk {n}".encode() * (1 + n) for n in range(200)]
    tasks = [
        asyncio.create_task(store.run_after_appending(data, _note_in_meta, f"m{n}"))
        for n, data in enumerate(payloads)
    ]
    await asyncio.sleep(0)  # every task has asked to write; the first starts the file process
    assert not any(task.done() for task in tasks), "the store closes with every write in flight"
    await store.close()
    done = await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    assert done == [hashlib.sha256(data).hexdigest() for data in payloads]
    assert len(_notes(store)) == 200
    with pytest.raises(StoreError, match="not open"):
        await store.run_after_appending(b"x", _note_in_meta, "late")


async def test_a_new_access_code_replaces_the_old_and_is_remembered_after_a_restart(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "data")
    await store.open()
    await store.register_exam("e", [Candidate("c1", "e", "Test Candidate", "site")], {"c1": "h1"})
    await store.redeem_code("h1", 5.0)
    event = SittingEvent("e/c1/p", "access-code-reissued", 7.0, {"by": "proctor-a"})
    await store.replace_code("e", "c1", "h2", event)
    with pytest.raises(AuthError, match="unknown access code"):
        await store.redeem_code("h1", 8.0)
    assert (await store.redeem_code("h2", 8.0)).candidate_id == "c1"
    with pytest.raises(StoreError, match="no candidate 'c9'"):
        await store.replace_code("e", "c9", "h3", replace(event, sitting_id="e/c9/p"))
    await store.close()
    reopened = SQLiteStore(tmp_path / "data")
    await reopened.open()
    assert await reopened.replaced_tokens() == {("e", "c1"): 7.0}
    events = [e for e in read_journal(reopened.path) if e.kind == "access-code-reissued"]
    assert len(events) == 1
    await reopened.close()


async def test_answers_and_placed_uploads_that_arrive_interleaved_are_written_in_one_run_each(
    store: SQLiteStore,
) -> None:
    calls: list[list[str]] = []

    def job(connection: sqlite3.Connection, written: list[tuple[str, Appended]]) -> list[str]:
        calls.append([name for name, _ in written])
        return _note_in_meta(connection, written)

    writes: list[asyncio.Future[object]] = []
    for n in range(40):  # answer, upload, answer, upload, … all queued before the writer runs
        writes.append(asyncio.ensure_future(store.record(answer_event(n, 1), snapshot(n, 1))))
        placed = Appended("seg", n, hashlib.sha256(f"u{n}".encode()).digest())
        writes.append(asyncio.ensure_future(store.run_placed(job, f"u{n}", placed)))
    outcomes = await asyncio.gather(*writes)

    answers, uploads = outcomes[0::2], outcomes[1::2]
    assert sorted(answers) == sorted(set(answers)) and len(answers) == 40  # type: ignore[type-var]
    assert uploads == [hashlib.sha256(f"u{n}".encode()).hexdigest() for n in range(40)]
    assert sum(len(call) for call in calls) == 40
    assert len(calls) <= store.commits, "one call for the uploads of each commit, not one each"
    for n in (0, 39):
        stored = await store.load_sitting(f"e/c{n}/p")
        assert stored is not None and [a.seq for a in stored.answers] == [1]
    assert journal.verify(read_journal(store.path), None).events == 40  # the answers


async def test_the_board_reads_the_sittings_of_the_loaded_exams_only(store: SQLiteStore) -> None:
    """An earlier exam day (`e2` here, whose id starts like `e`'s) is not read at start."""
    for exam_id, n in (("e", 1), ("e", 2), ("e2", 3), ("f", 4)):
        shot = replace(snapshot(n, 1), sitting_id=f"{exam_id}/c{n}/p", exam_id=exam_id)
        event = replace(answer_event(n, 1), sitting_id=shot.sitting_id)
        await store.record(event, shot)
    found = await store.sittings_of(["e"])
    assert sorted(s.snapshot.sitting_id for s in found) == ["e/c1/p", "e/c2/p"]
    assert all([a.item_id for a in s.answers] == ["item-1"] for s in found)
    both = await store.sittings_of(["e2", "f"])
    assert sorted(s.snapshot.sitting_id for s in both) == ["e2/c3/p", "f/c4/p"]
    assert await store.sittings_of([]) == []
