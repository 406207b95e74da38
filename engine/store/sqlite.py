"""The embedded store: one SQLite file in WAL mode, written by one thread with group commit.

Every job (a write, or a read that must see all writes before it) goes into one queue. The writer
thread takes everything queued, runs it inside one transaction — each job in its own savepoint,
so one failing job does not undo the others — and commits once: with ``synchronous=FULL`` that
is one fsync for however many answers arrived meanwhile. Only after the commit are the callers'
futures resolved, which is what lets the server acknowledge an answer as durable.

What keeps the per-answer cost low (docs/performance.md has the figures):

- `record` calls are kept as data, and a run of them in one batch is written with one multi-row
  statement per table (journal, sittings) inside one savepoint, instead of several statements
  per answer: bound values are converted, and each statement's GIL retaken, on the writer's
  side of the GIL. If the run is refused (an answer's seq stored already), the savepoint is
  rolled back and the run is written record by record, so only the refused record fails.
- Pages, not statements, set SQLite's own pace: each page an answer dirties is a 4 KiB frame in
  the write-ahead log. So answers are left out of the journal's per-sitting index (the answers
  table finds them), their answers rows wait up to a second in `AnswerBuffer` (durable in the
  journal meanwhile) to be written in sitting order, and the log is copied back into the
  database by `Checkpointer` on its own thread rather than inside a commit.
- `record` is the only writer of the ``sittings`` table, so the store remembers the row it last
  wrote for each sitting not yet closed and writes only what changed (an answer changes
  ``last_seq`` alone: two bound values); a rollback restores what it changed of that memory.
- The callers' asyncio futures are resolved in one hop to their event loop per commit, not one
  thread-safe call each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import operator
import queue
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from engine import journal
from engine.exceptions import AuthError, StoreError
from engine.latency import percentiles_ms
from engine.model import Candidate
from engine.sitting import AnswerRecord, SittingEvent, Snapshot, State, sitting_range
from engine.store.answer_buffer import AnswerBuffer
from engine.store.answer_buffer import Row as AnswerRow
from engine.store.base import Redemption, StoredSitting
from engine.store.checkpointer import WRITER_AUTOCHECKPOINT_PAGES, Checkpointer
from engine.store.file_process import Appended, FileProcess

T = TypeVar("T")
Item = TypeVar("Item")
Job = Callable[[sqlite3.Connection], Any]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS exams (id TEXT PRIMARY KEY, secret BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    exam_id TEXT NOT NULL, id TEXT NOT NULL, full_name TEXT NOT NULL, site_id TEXT NOT NULL,
    office TEXT NOT NULL, document TEXT NOT NULL,
    code_hash TEXT UNIQUE, code_used_at REAL, tokens_replaced_at REAL,
    PRIMARY KEY (exam_id, id)
);
CREATE TABLE IF NOT EXISTS sittings (
    id TEXT PRIMARY KEY, exam_id TEXT NOT NULL, candidate_id TEXT NOT NULL, part_id TEXT NOT NULL,
    state TEXT NOT NULL, language TEXT, time_limit_s REAL NOT NULL,
    checked_in_at REAL, started_at REAL, extra_s REAL NOT NULL, paused_total_s REAL NOT NULL,
    paused_at REAL, closed_at REAL, close_reason TEXT NOT NULL, last_seq INTEGER NOT NULL,
    identity_by TEXT, identity_at REAL, disconnected_at REAL, lost_s REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sittings_by_state ON sittings (state);
CREATE TABLE IF NOT EXISTS answers (
    sitting_id TEXT NOT NULL, seq INTEGER NOT NULL, item_id TEXT NOT NULL, choice INTEGER,
    flagged INTEGER NOT NULL, at REAL NOT NULL, journal_seq INTEGER NOT NULL,
    PRIMARY KEY (sitting_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY, sitting_id TEXT NOT NULL, kind TEXT NOT NULL, at REAL NOT NULL,
    body BLOB NOT NULL, leaf BLOB NOT NULL, chain BLOB NOT NULL
);
DROP INDEX IF EXISTS journal_by_sitting;
CREATE INDEX IF NOT EXISTS journal_events_by_sitting ON journal (sitting_id, seq)
    WHERE kind <> 'answer';
CREATE TABLE IF NOT EXISTS results (sitting_id TEXT PRIMARY KEY, body TEXT NOT NULL);
"""

SNAPSHOT_COLUMNS = (
    "id, exam_id, candidate_id, part_id, state, language, time_limit_s, checked_in_at, "
    "started_at, extra_s, paused_total_s, paused_at, closed_at, close_reason, last_seq, "
    "identity_by, identity_at, disconnected_at, lost_s"
)
ANSWER_KIND = "answer"
ANSWERS_MARK = "answers-indexed-to"
"""meta key: every answer up to this journal seq has its answers row (later ones are replayed)."""
OPEN_STATES = (State.CHECKED_IN.value, State.RUNNING.value, State.PAUSED.value)


ROWS_PER_STATEMENT = 128
"""The largest multi-row statement `insert_many` writes."""
CACHED_STATEMENTS = 2048
"""sqlite3's cache of prepared statements per connection (its default is 128): `insert_many`
writes each table's statement in every size up to `ROWS_PER_STATEMENT`."""


class StoreConnection(sqlite3.Connection):
    """A store's connection, which can remember what it found in the schema."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schemas_in_place: dict[str, int] = {}
        """Per module, the ``schema_version`` at which all its tables were there: a module's
        `ensure_schema` checks one number instead of reading `sqlite_master` again. Any change
        to the schema, and the undoing of one, changes that number."""


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the settings durability depends on."""
    connection = sqlite3.connect(
        path,
        isolation_level=None,
        check_same_thread=False,
        cached_statements=CACHED_STATEMENTS,
        factory=StoreConnection,
    )
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA busy_timeout=5000")
    return connection


@dataclass(frozen=True, slots=True)
class _Record:
    """What one `record` call writes, kept as data so a run of them shares its statements."""

    event: SittingEvent
    row: tuple[Any, ...]
    data: dict[str, Any]


@dataclass(slots=True)
class _Pending:
    job: Job
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    record: _Record | None = None
    """Set for `record` calls: `job` then writes nothing when it raises (else `_PartlyWritten`),
    so it needs no savepoint, and consecutive records are written together."""
    sees_answers: bool = True
    """The job may read the answers table: the answers held back are written before it runs."""
    together: Together[Any, Any] | None = None
    """Set for `run_after_appending` and `run_placed` calls: those of one commit with the same job
    are run as one call (`_runs`; `job` alone is the fallback)."""
    queued_at: float = field(default_factory=time.perf_counter)
    """When it was queued: how long jobs wait for the writer."""


@dataclass(frozen=True, slots=True)
class Together(Generic[Item, T]):
    """A job that takes many items at once (one statement per table for all of them), and one
    of its items."""

    job: Callable[[sqlite3.Connection, list[Item]], list[T]]
    item: Item


def _runs(batch: list[_Pending]) -> list[list[int]]:
    """The batch's jobs (by index) in the runs they are written in: between two jobs that are
    neither a record nor joint, every record in one run, then every joint job's items in one
    run each. Answers and media uploads arrive interleaved; written in the order they came, a
    batch fell into many small runs, each its own statements and its own turns at the GIL."""
    runs: list[list[int]] = []
    records: list[int] = []
    joint: dict[Any, list[int]] = {}

    def close() -> None:
        if records:
            runs.append(records.copy())
            records.clear()
        runs.extend(joint.values())
        joint.clear()

    for index, pending in enumerate(batch):
        if pending.record is not None:
            records.append(index)
        elif pending.together is not None:
            joint.setdefault(pending.together.job, []).append(index)
        else:
            close()
            runs.append([index])
    close()
    return runs


class _PartlyWritten(Exception):
    """An all-or-nothing job failed after writing: only the whole batch can be undone."""


def _settle(
    outcomes: list[tuple[asyncio.Future[Any], bool, Any]],
    committed_at: float,
    settle_s: deque[float],
) -> None:
    """On the caller's loop: resolve every future of one commit (skipping cancelled ones)."""
    settle_s.append(time.perf_counter() - committed_at)
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class SQLiteStore:
    """`engine.store.base.Store` on one SQLite file under the data directory."""

    FILE_NAME = "examhall.sqlite3"
    MAX_BATCH = 2000
    HEAD_LAG_S = 0.2
    """journal.head is rewritten at most this often (and when the queue goes idle, and on
    close): it may lag the database, and a file replace per group commit cost the writer."""

    SEGMENTS = "media/segments"
    """Where uploads are appended (engine/store/file_child.py), relative to the data directory."""

    RECENT_COMMITS = 1000
    ANSWERS_LAG_S = 1.0
    """How long answers (durable in the journal) may wait for their answers-table rows."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / self.FILE_NAME
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._head = journal.Head(0, journal.GENESIS)
        self._head_written = self._head
        self._head_written_at = 0.0
        self.commits = 0
        self.jobs_committed = 0
        self._commit_s: deque[float] = deque(maxlen=self.RECENT_COMMITS)
        """How long the recent batches took, first statement to durable commit."""
        self._wait_s: deque[float] = deque(maxlen=self.RECENT_COMMITS)
        """How long the oldest job of each recent batch waited in the queue for the writer."""
        self._settle_s: deque[float] = deque(maxlen=self.RECENT_COMMITS)
        """How long each recent commit's outcomes waited for their event loop to take them."""
        self._rows: dict[str, tuple[Any, ...]] = {}
        """The sittings row as last written, per sitting not yet closed (writer thread only)."""
        self._undo: list[tuple[str, tuple[Any, ...] | None]] = []
        """(sitting id, row before) for every `_rows` change of the batch being committed."""
        self._checkpointer = Checkpointer(self.path, connect)
        self._files = FileProcess(data_dir / self.SEGMENTS)
        self._closing = False
        self._answers = AnswerBuffer(self.ANSWERS_LAG_S)
        self._max_variables = 999
        """Bound parameters SQLite takes in one statement (read from the library on open)."""

    # -- the writer thread -------------------------------------------------------------------

    async def open(self) -> None:
        self._closing = False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        connection = connect(self.path)
        connection.executescript(SCHEMA)
        columns = {row[1] for row in connection.execute("PRAGMA table_info(candidates)")}
        if "tokens_replaced_at" not in columns:  # a store made before new access codes
            connection.execute("ALTER TABLE candidates ADD COLUMN tokens_replaced_at REAL")
        connection.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")
        self._max_variables = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        row = connection.execute(
            "SELECT seq, chain FROM journal ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        if row:
            self._head = journal.Head(row[0], bytes(row[1]))
        self._index_answers_left_in_the_journal(connection)
        self._head_written = self._head
        self._thread = threading.Thread(
            target=self._run, args=(connection,), name="examhall-store", daemon=True
        )
        self._thread.start()
        self._checkpointer.start()

    async def close(self) -> None:
        if self._thread is None:
            return
        # First, so that the writer's connection is the last one and removes the log on close.
        await asyncio.to_thread(self._checkpointer.stop)
        self._closing = True  # no new uploads; those sent are written and queued before the stop
        await self._files.stop()
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None

    def _run(self, connection: sqlite3.Connection) -> None:
        try:
            while True:
                idle_after = self.HEAD_LAG_S if self._head_stale() or self._answers else None
                try:
                    first = self._queue.get(timeout=idle_after)
                except queue.Empty:
                    # Idle: write the answers held back, bring journal.head level with the database.
                    self._write_held_answers(connection)
                    self._write_head()
                    continue
                batch = [] if first is None else [first]
                stop = first is None
                while not stop and len(batch) < self.MAX_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                if batch:
                    self._commit_batch(connection, batch)
                if stop:
                    self._write_held_answers(connection)
                    return
        finally:
            if self._head_stale():
                self._write_head()
            connection.close()

    def _write_held_answers(self, connection: sqlite3.Connection) -> None:
        """A commit of nothing but the answers rows held back (when idle, and on close)."""
        if self._answers:
            self._commit_batch(connection, [])

    def _head_stale(self) -> bool:
        return self._head != self._head_written

    def _write_head(self) -> None:
        journal.write_head(self.data_dir, self._head)
        self._head_written = self._head
        self._head_written_at = time.monotonic()

    def _commit_batch(self, connection: sqlite3.Connection, batch: list[_Pending]) -> None:
        began = time.perf_counter()
        head_before = self._head
        self._undo.clear()
        answers_before = self._answers.mark()
        outcomes: list[tuple[bool, Any]] = [(False, None)] * len(batch)
        try:
            connection.execute("BEGIN IMMEDIATE")
            for run in _runs(batch):
                pendings = [batch[index] for index in run]
                first = pendings[0]
                if first.record is not None:
                    written = self._write_records(connection, pendings)
                else:
                    if any(pending.sees_answers for pending in pendings):
                        self._write_answers(connection, self._answers.take_all())
                    if len(pendings) > 1:
                        written = self._write_together(connection, pendings)
                    else:
                        written = [self._in_savepoint(connection, first.job)]
                for index, outcome in zip(run, written, strict=True):
                    outcomes[index] = outcome
            self._write_answers(connection, self._answers_due(batch))
            connection.execute("COMMIT")
        except Exception as error:
            self._head = head_before
            self._roll_back_rows(0)
            self._answers.restore(answers_before)
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            failure = StoreError(f"commit failed: {error}")
            self._resolve([(pending, False, failure) for pending in batch])
            return
        self._answers.settle()
        if batch:  # not the idle commits that only write answers held back
            self.commits += 1
            self.jobs_committed += len(batch)
            self._commit_s.append(time.perf_counter() - began)
            self._wait_s.append(began - min(pending.queued_at for pending in batch))
        if self._head_stale() and time.monotonic() - self._head_written_at >= self.HEAD_LAG_S:
            self._write_head()
        self._resolve(
            [(pending, ok, value) for pending, (ok, value) in zip(batch, outcomes, strict=True)]
        )

    def _in_savepoint(self, connection: sqlite3.Connection, job: Job) -> tuple[bool, Any]:
        """(True, what `job` returned), or (False, its exception) with all it wrote undone."""
        head_at_job = self._head
        undo_at_job = len(self._undo)
        connection.execute("SAVEPOINT job")
        try:
            value = job(connection)
        except Exception as error:
            connection.execute("ROLLBACK TO job")
            connection.execute("RELEASE job")
            self._head = head_at_job
            self._roll_back_rows(undo_at_job)
            return False, error
        connection.execute("RELEASE job")
        return True, value

    def _write_together(
        self, connection: sqlite3.Connection, run: list[_Pending]
    ) -> list[tuple[bool, Any]]:
        """A run of `Together` jobs with one job: one call for all their items; if that raises,
        each alone, so only the failing one fails."""
        first = run[0].together
        assert first is not None
        items = [pending.together.item for pending in run if pending.together is not None]

        def all_at_once(connection: sqlite3.Connection) -> list[Any]:
            results = first.job(connection, items)
            if len(results) != len(items):
                raise StoreError(f"a joint job gave {len(results)} results for {len(items)} items")
            return results

        ok, results = self._in_savepoint(connection, all_at_once)
        if ok:
            return [(True, result) for result in results]
        return [self._in_savepoint(connection, pending.job) for pending in run]

    def _write_records(
        self, connection: sqlite3.Connection, run: list[_Pending]
    ) -> list[tuple[bool, Any]]:
        """Write consecutive `record` calls together; record by record if that is refused."""
        if len(run) > 1:
            head_at_run, undo_at_run = self._head, len(self._undo)
            answers_at_run = self._answers.mark()
            connection.execute("SAVEPOINT records")
            try:
                seqs = self._insert_records(connection, run)
            except Exception:
                connection.execute("ROLLBACK TO records")
                connection.execute("RELEASE records")
                self._head = head_at_run
                self._roll_back_rows(undo_at_run)
                self._answers.restore(answers_at_run)
            else:
                connection.execute("RELEASE records")
                return [(True, seq) for seq in seqs]
        outcomes: list[tuple[bool, Any]] = []
        for pending in run:
            try:
                outcomes.append((True, pending.job(connection)))
            except _PartlyWritten:
                raise
            except Exception as error:
                outcomes.append((False, error))
        return outcomes

    def _insert_records(self, connection: sqlite3.Connection, run: list[_Pending]) -> list[int]:
        """One statement per table for a run of records; returns their journal seqs."""
        seq = self._head.seq
        answers: list[tuple[Any, ...]] = []
        events: list[tuple[str, str, float, Any]] = []
        now = time.monotonic()
        latest: dict[str, tuple[Any, ...]] = {}
        for pending in run:
            assert pending.record is not None
            event, row, data = pending.record.event, pending.record.row, pending.record.data
            seq += 1
            events.append((event.sitting_id, event.kind, event.at, data))
            answer = event.answer
            if answer is not None:
                self._accept_answer(connection, event.sitting_id, answer.seq)
                answers.append(_answer_row(event.sitting_id, answer, seq))
            latest[event.sitting_id] = row
        seqs = self.append_events(connection, events)
        for answer_row in answers:
            self._answers.add(answer_row, now)
        full: list[tuple[Any, ...]] = []
        for row in latest.values():
            before = self._rows.get(row[0])
            if before == row:
                continue
            if before is None or not _only_last_seq_differs(before, row):
                full.append(row)
            # else an answer's last_seq alone: written with its answers row (`_write_answers`)
            self._remember_row(row, before)
        self.insert_many(connection, _REPLACE_SITTINGS_HEAD, full)
        return seqs

    def insert_many(
        self,
        connection: sqlite3.Connection,
        head: str,
        rows: list[tuple[Any, ...]],
        tail: str = "",
    ) -> None:
        """`head VALUES (…), (…) tail` for every row: one statement per `ROWS_PER_STATEMENT`.

        Few statements, because SQLite releases the GIL around every step and the writer then
        waits for the loop thread to give it back: row by row (`executemany`), a busy loop made
        a 5 µs insert cost 100–300 µs, and so did each statement of a batch cut into
        power-of-two sizes (a run of 30 rows was four). A run takes one statement of exactly
        its size; `connect`'s statement cache holds every size of every table's statement, so
        none is parsed again.
        """
        if not rows:
            return
        width = len(rows[0])
        placeholder = "(" + ", ".join("?" * width) + ")"
        size = ROWS_PER_STATEMENT
        while size * width > self._max_variables:
            size //= 2
        for start in range(0, len(rows), size):
            chunk = rows[start : start + size]
            connection.execute(
                head + ", ".join([placeholder] * len(chunk)) + tail,
                [value for row in chunk for value in row],
            )

    def _remember_row(self, row: tuple[Any, ...], before: tuple[Any, ...] | None) -> None:
        self._undo.append((row[0], before))
        if row[_STATE_INDEX] in _FINAL_STATE_VALUES:
            self._rows.pop(row[0], None)
        else:
            self._rows[row[0]] = row

    def _roll_back_rows(self, keep: int) -> None:
        """Forget the remembered rows written after the first `keep` changes of this batch."""
        while len(self._undo) > keep:
            sitting_id, before = self._undo.pop()
            if before is None:
                self._rows.pop(sitting_id, None)
            else:
                self._rows[sitting_id] = before

    def _accept_answer(self, connection: sqlite3.Connection, sitting_id: str, seq: int) -> None:
        """Refuse an answer whose seq is not after every seq stored for its sitting."""
        highest = self._answers.highest(sitting_id)
        if highest is None:
            row = connection.execute(
                "SELECT MAX(seq) FROM answers WHERE sitting_id = ?", (sitting_id,)
            ).fetchone()
            highest = row[0] or 0
        if seq <= highest:
            raise StoreError(f"answer {seq} of {sitting_id} is stored already (up to {highest})")
        self._answers.note_highest(sitting_id, seq)

    def _answers_due(self, batch: list[_Pending]) -> list[AnswerRow]:
        """The answers rows this commit writes: all held when it closes a sitting or is idle."""
        if not batch or any(
            pending.record is not None and pending.record.row[_STATE_INDEX] in _FINAL_STATE_VALUES
            for pending in batch
        ):
            return self._answers.take_all()
        return self._answers.next_slice(len(batch), time.monotonic())

    def _write_answers(self, connection: sqlite3.Connection, rows: list[AnswerRow]) -> None:
        if not rows:
            return
        self.insert_many(connection, "INSERT INTO answers VALUES ", rows)
        self._raise_last_seq(connection, rows)
        connection.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            (ANSWERS_MARK, self._answers.indexed_to(self._head.seq)),
        )

    def _raise_last_seq(self, connection: sqlite3.Connection, rows: list[AnswerRow]) -> None:
        """Bring the sittings' ``last_seq`` up to the answers rows just written.

        An answer changes nothing else in its sitting's row, and that row's page would be one
        more page written per answer (docs/performance.md): so ``last_seq`` waits here with the
        answers rows, one update per sitting for all of its answers of that second, in sitting
        order. A sitting's rows come in seq order, so the last one of each is its highest; the
        update never lowers a ``last_seq`` a whole row wrote meanwhile.
        """
        highest = {row[0]: row[1] for row in rows}
        self.insert_many(
            connection, _RAISE_LAST_SEQ_HEAD, list(highest.items()), _RAISE_LAST_SEQ_TAIL
        )

    def _index_answers_left_in_the_journal(self, connection: sqlite3.Connection) -> None:
        """On open: write the answers rows of answers a stop left only in the journal."""
        mark = connection.execute("SELECT value FROM meta WHERE key = ?", (ANSWERS_MARK,))
        row = mark.fetchone()
        # No mark: the database predates held-back answers, so every answer has its row.
        indexed_to = self._head.seq if row is None else int(row[0])
        rows = []
        for seq, sitting_id, at, body in connection.execute(
            "SELECT seq, sitting_id, at, body FROM journal WHERE seq > ? AND kind = ?",
            (indexed_to, ANSWER_KIND),
        ):
            data = journal.decode_body(bytes(body))[4]
            try:
                answer = AnswerRecord(data["item"], data["choice"], data["flag"], data["seq"], at)
            except KeyError as missing:
                raise StoreError(f"journal event {seq}: an answer without {missing}") from None
            rows.append(_answer_row(sitting_id, answer, seq))
        connection.execute("BEGIN IMMEDIATE")
        self.insert_many(connection, "INSERT OR IGNORE INTO answers VALUES ", rows)
        self._raise_last_seq(connection, rows)
        connection.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (ANSWERS_MARK, self._head.seq)
        )
        connection.execute("COMMIT")

    def _resolve(self, outcomes: list[tuple[_Pending, bool, Any]]) -> None:
        """Hand the outcomes of one commit to their loops: one thread-safe call per loop."""
        committed_at = time.perf_counter()
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for pending, ok, value in outcomes:
            by_loop.setdefault(pending.loop, []).append((pending.future, ok, value))
        for loop, settled in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, settled, committed_at, self._settle_s)

    async def run(self, job: Callable[[sqlite3.Connection], T], *, sees_answers: bool = True) -> T:
        """Run `job(connection)` on the writer thread inside the next group commit.

        The result is returned once the commit is durable. Modules that keep their own tables
        (results, appeals, fixation) use this and `append_event`, never a connection of their own.
        A frequent job that never reads the answers table passes ``sees_answers=False``, so the
        answers held back (engine/store/answer_buffer.py) are not written early for it.
        """
        return await self._enqueue(job, sees_answers=sees_answers)

    async def run_after_appending(
        self,
        data: bytes,
        job: Callable[[sqlite3.Connection, list[tuple[Item, Appended]]], list[T]],
        item: Item,
        *,
        sees_answers: bool = True,
    ) -> T:
        """Append `data` to a segment file and sync it in the file process
        (engine/store/file_process.py), outside any transaction; then, in the next group commit,
        `job(connection, [(item, where it is and its SHA-256), …])` on the writer thread,
        together with the other appends done meanwhile that have the same job (one statement per
        table for all, not one each). The segment is named relative to the data directory.

        Returns this item's result once that commit is durable. A failed write (`OSError`) or
        job is raised here.
        """
        if self._thread is None or self._closing:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def then(written: Appended | Exception) -> None:
            # On the loop, as the child's reply is read: the job is queued before `close`
            # queues the writer's stop, since `close` waits for the replies first.
            if isinstance(written, Exception):
                if not future.done():
                    future.set_exception(written)
                return
            self._queue_placed(job, item, written, future, sees_answers=sees_answers)

        await self._files.append(data, then)
        return await future

    async def run_placed(
        self,
        job: Callable[[sqlite3.Connection, list[tuple[Item, Appended]]], list[T]],
        item: Item,
        appended: Appended,
        *,
        sees_answers: bool = True,
    ) -> T:
        """`run_after_appending` for bytes another process appended and synced already, to
        the segment `appended.segment` in the same folder (engine/server/media_process.py)."""
        if self._thread is None or self._closing:
            raise StoreError("the store is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue_placed(job, item, appended, future, sees_answers=sees_answers)
        return await future

    def _queue_placed(
        self,
        job: Callable[[sqlite3.Connection, list[tuple[Item, Appended]]], list[T]],
        item: Item,
        appended: Appended,
        future: asyncio.Future[T],
        *,
        sees_answers: bool,
    ) -> None:
        both = (item, replace(appended, segment=f"{self.SEGMENTS}/{appended.segment}"))
        alone: Job = lambda connection: job(connection, [both])[0]  # noqa: E731
        together = Together(job, both)
        self._queue.put(_Pending(alone, future.get_loop(), future, None, sees_answers, together))

    def _enqueue(
        self,
        job: Callable[[sqlite3.Connection], T],
        record: _Record | None = None,
        *,
        sees_answers: bool = True,
    ) -> asyncio.Future[T]:
        if self._thread is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Pending(job, loop, future, record, sees_answers))
        return future

    def append_event(
        self, connection: sqlite3.Connection, sitting_id: str, kind: str, at: float, data: Any
    ) -> int:
        """Add an event to the journal; call only from inside a `run` job."""
        return self.append_events(connection, [(sitting_id, kind, at, data)])[0]

    def append_events(
        self, connection: sqlite3.Connection, events: Sequence[tuple[str, str, float, Any]]
    ) -> list[int]:
        """Add (sitting id, kind, at, data) events to the journal in one statement; their seqs.
        Call only from inside a job."""
        seq, chain = self._head.seq, self._head.chain
        entries: list[tuple[Any, ...]] = []
        for sitting_id, kind, at, data in events:
            seq += 1
            body = journal.encode_body(seq, sitting_id, kind, at, data)
            leaf, chain = journal.link(chain, body)
            entries.append((seq, sitting_id, kind, at, body, leaf, chain))
        self.insert_many(connection, _INSERT_JOURNAL, entries)
        self._head = journal.Head(seq, chain)
        return [entry[0] for entry in entries]

    # -- the interface -----------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "commits": self.commits,
            "jobs": self.jobs_committed,
            "recent_commit_ms": percentiles_ms(list(self._commit_s)),
            "recent_queue_wait_ms": percentiles_ms(list(self._wait_s)),
            "recent_settle_wait_ms": percentiles_ms(list(self._settle_s)),
            "checkpoints": self._checkpointer.checkpoints,
            "checkpoints_busy": self._checkpointer.busy_or_failed,
            "file_process": self._files.stats(),
        }

    async def server_secret(self) -> bytes:
        def job(connection: sqlite3.Connection) -> bytes:
            row = connection.execute("SELECT value FROM meta WHERE key = 'token-secret'").fetchone()
            if row:
                return bytes(row[0])
            secret = secrets.token_bytes(32)
            connection.execute("INSERT INTO meta VALUES ('token-secret', ?)", (secret,))
            return secret

        return await self.run(job)

    async def register_exam(
        self, exam_id: str, candidates: Sequence[Candidate], code_hashes: dict[str, str]
    ) -> bytes:
        def job(connection: sqlite3.Connection) -> bytes:
            row = connection.execute("SELECT secret FROM exams WHERE id = ?", (exam_id,)).fetchone()
            if row:
                secret = bytes(row[0])
            else:
                secret = secrets.token_bytes(32)
                connection.execute("INSERT INTO exams VALUES (?, ?)", (exam_id, secret))
                self.append_event(connection, "", "exam-registered", 0.0, {"exam": exam_id})
            connection.executemany(
                "INSERT OR IGNORE INTO candidates (exam_id, id, full_name, site_id, office, "
                "document, code_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        exam_id,
                        c.id,
                        c.full_name,
                        c.site_id,
                        c.office,
                        c.document,
                        code_hashes.get(c.id),
                    )
                    for c in candidates
                ],
            )
            return secret

        return await self.run(job)

    async def known_candidates(self, exam_id: str) -> set[str]:
        def job(connection: sqlite3.Connection) -> set[str]:
            rows = connection.execute(
                "SELECT id FROM candidates WHERE exam_id = ? AND code_hash IS NOT NULL", (exam_id,)
            )
            return {row[0] for row in rows}

        return await self.run(job)

    async def redeem_code(self, code_hash: str, now: float) -> Redemption:
        def job(connection: sqlite3.Connection) -> Redemption:
            row = connection.execute(
                "SELECT exam_id, id, code_used_at FROM candidates WHERE code_hash = ?", (code_hash,)
            ).fetchone()
            if row is None:
                raise AuthError("unknown access code", code="bad_code")
            if row[2] is not None:
                raise AuthError(
                    "this access code was already used; ask a proctor for a new one",
                    code="code_used",
                )
            connection.execute(
                "UPDATE candidates SET code_used_at = ? WHERE code_hash = ?", (now, code_hash)
            )
            return Redemption(row[0], row[1])

        return await self.run(job)

    async def replace_code(
        self, exam_id: str, candidate_id: str, code_hash: str, event: SittingEvent
    ) -> None:
        def job(connection: sqlite3.Connection) -> None:
            changed = connection.execute(
                "UPDATE candidates SET code_hash = ?, code_used_at = NULL, tokens_replaced_at = ? "
                "WHERE exam_id = ? AND id = ?",
                (code_hash, event.at, exam_id, candidate_id),
            ).rowcount
            if changed != 1:
                raise StoreError(f"no candidate {candidate_id!r} in exam {exam_id!r}")
            self.append_event(connection, event.sitting_id, event.kind, event.at, event.data)

        await self.run(job)

    async def replaced_tokens(self) -> dict[tuple[str, str], float]:
        def job(connection: sqlite3.Connection) -> dict[tuple[str, str], float]:
            rows = connection.execute(
                "SELECT exam_id, id, tokens_replaced_at FROM candidates "
                "WHERE tokens_replaced_at IS NOT NULL"
            )
            return {(exam_id, candidate_id): float(at) for exam_id, candidate_id, at in rows}

        return await self.run(job)

    async def release_code(self, code_hash: str) -> None:
        """Make a redeemed code usable again (its holder was refused admission)."""

        def job(connection: sqlite3.Connection) -> None:
            connection.execute(
                "UPDATE candidates SET code_used_at = NULL WHERE code_hash = ?", (code_hash,)
            )

        await self.run(job)

    async def unused_codes(self, exam_id: str) -> set[str]:
        def job(connection: sqlite3.Connection) -> set[str]:
            rows = connection.execute(
                "SELECT id FROM candidates WHERE exam_id = ? AND code_used_at IS NULL", (exam_id,)
            )
            return {row[0] for row in rows}

        return await self.run(job)

    async def load_sitting(self, sitting_id: str) -> StoredSitting | None:
        def job(connection: sqlite3.Connection) -> StoredSitting | None:
            row = connection.execute(
                f"SELECT {SNAPSHOT_COLUMNS} FROM sittings WHERE id = ?", (sitting_id,)
            ).fetchone()
            return None if row is None else _stored(connection, row)

        return await self.run(job)

    async def sittings_of(self, exam_ids: Collection[str]) -> list[StoredSitting]:
        """Every sitting of these exams, with its answers: the proctors' board on start.

        By ranges of the key: earlier exam days' sittings are not read at all (with 50,000 of
        them and their answers, reading every sitting made a start take 25–30 s, not 3).
        """

        def job(connection: sqlite3.Connection) -> list[StoredSitting]:
            found = []
            for exam_id in exam_ids:
                rows = connection.execute(
                    f"SELECT {SNAPSHOT_COLUMNS} FROM sittings WHERE id >= ? AND id < ?",
                    sitting_range(exam_id),
                ).fetchall()
                found += [_stored(connection, row) for row in rows]
            return found

        return await self.run(job)

    async def open_sittings(self) -> list[StoredSitting]:
        def job(connection: sqlite3.Connection) -> list[StoredSitting]:
            rows = connection.execute(
                f"SELECT {SNAPSHOT_COLUMNS} FROM sittings WHERE state IN (?, ?, ?)", OPEN_STATES
            ).fetchall()
            return [_stored(connection, row) for row in rows]

        return await self.run(job)

    async def record(self, event: SittingEvent, snapshot: Snapshot) -> int:
        return await self.record_soon(event, snapshot)

    def record_soon(self, event: SittingEvent, snapshot: Snapshot) -> asyncio.Future[int]:
        """Queue the record now; the future resolves once it is durable.

        The hall's per-answer path: a plain future costs no task, unlike the coroutine `record`.
        """
        if (event.answer is not None) != (event.kind == ANSWER_KIND):
            # events_of finds answers through the answers table, everything else through
            # the partial index that leaves kind 'answer' out: the two must agree.
            raise StoreError(f"a {event.kind!r} event must carry an answer iff it is an answer")
        row = _snapshot_row(snapshot)
        data = dict(event.data)

        def job(connection: sqlite3.Connection) -> int:
            # The one check that can refuse (an answer's seq stored already) goes first, so a
            # refusal leaves nothing written and the job needs no savepoint of its own.
            seq = self._head.seq + 1
            answer = event.answer
            if answer is not None:
                self._accept_answer(connection, event.sitting_id, answer.seq)
            try:
                self.append_event(connection, event.sitting_id, event.kind, event.at, data)
                self._write_sitting_row(connection, row)
            except Exception as error:
                raise _PartlyWritten(error) from error
            if answer is not None:
                self._answers.add(_answer_row(event.sitting_id, answer, seq), time.monotonic())
            return seq

        return self._enqueue(job, _Record(event, row, data))

    async def events_of(self, sitting_id: str) -> list[dict[str, Any]]:
        """A sitting's journal, oldest first, for the proctor's detail view and audits."""

        def job(connection: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = connection.execute(_EVENTS_OF_SITTING, (sitting_id, sitting_id))
            return [
                {"seq": seq, "kind": kind, "at": at, "data": journal.decode_body(bytes(body))[4]}
                for seq, kind, at, body in rows
            ]

        return await self.run(job)

    def _write_sitting_row(self, connection: sqlite3.Connection, row: tuple[Any, ...]) -> None:
        """Write a sittings row: the changed columns of a remembered row, else the whole row."""
        sitting_id = row[0]
        before = self._rows.get(sitting_id)
        if before == row:
            return
        if before is not None and _only_last_seq_differs(before, row):
            # an answer's last_seq alone: written with its answers row (`_write_answers`)
            self._remember_row(row, before)
            return
        written = False
        if before is not None:
            changed = [i for i in range(1, len(row)) if row[i] != before[i]]
            assignments = ", ".join(f"{_SNAPSHOT_FIELD_COLUMNS[i]} = ?" for i in changed)
            cursor = connection.execute(
                f"UPDATE sittings SET {assignments} WHERE id = ?",
                [row[i] for i in changed] + [sitting_id],
            )
            written = cursor.rowcount == 1
        if not written:
            connection.execute(_REPLACE_SITTING, row)
        self._remember_row(row, before)

    async def save_result(self, sitting_id: str, result: dict[str, Any], at: float) -> None:
        body = json.dumps(result, ensure_ascii=False, sort_keys=True)

        def job(connection: sqlite3.Connection) -> None:
            connection.execute("INSERT OR REPLACE INTO results VALUES (?, ?)", (sitting_id, body))
            self.append_event(connection, sitting_id, "result", at, {"result": body})

        await self.run(job)

    async def load_result(self, sitting_id: str) -> dict[str, Any] | None:
        def job(connection: sqlite3.Connection) -> dict[str, Any] | None:
            row = connection.execute(
                "SELECT body FROM results WHERE sitting_id = ?", (sitting_id,)
            ).fetchone()
            return None if row is None else dict(json.loads(row[0]))

        return await self.run(job)


def _answer_row(sitting_id: str, answer: AnswerRecord, journal_seq: int) -> AnswerRow:
    return (
        sitting_id,
        answer.seq,
        answer.item_id,
        answer.choice,
        int(answer.flagged),
        answer.at,
        journal_seq,
    )


_SNAPSHOT_FIELDS = (
    "sitting_id",
    "exam_id",
    "candidate_id",
    "part_id",
    "state",
    "language",
    "time_limit_s",
    "checked_in_at",
    "started_at",
    "extra_s",
    "paused_total_s",
    "paused_at",
    "closed_at",
    "close_reason",
    "last_seq",
    "identity_by",
    "identity_at",
    "disconnected_at",
    "lost_s",
)
_snapshot_row: Callable[[Snapshot], tuple[Any, ...]] = operator.attrgetter(
    *(f"{name}._value_" if name == "state" else name for name in _SNAPSHOT_FIELDS)
)
"""The sittings row of a snapshot, in `_SNAPSHOT_FIELDS` order, the state as its plain text:
one call in C on every record."""
_STATE_INDEX = _SNAPSHOT_FIELDS.index("state")
_FINAL_STATE_VALUES = frozenset(state.value for state in State if state.is_final)
_SNAPSHOT_FIELD_COLUMNS = tuple(name.strip() for name in SNAPSHOT_COLUMNS.split(","))
"""Column names by field position (the sitting id's column is `id`)."""
_REPLACE_SITTING = (
    f"INSERT OR REPLACE INTO sittings ({SNAPSHOT_COLUMNS}) "
    f"VALUES ({', '.join('?' * len(_SNAPSHOT_FIELDS))})"
)
_REPLACE_SITTINGS_HEAD = f"INSERT OR REPLACE INTO sittings ({SNAPSHOT_COLUMNS}) VALUES "
_RAISE_LAST_SEQ_HEAD = "WITH written (id, last_seq) AS (VALUES "
_RAISE_LAST_SEQ_TAIL = (
    ") UPDATE sittings SET last_seq = max(sittings.last_seq, written.last_seq) FROM written "
    "WHERE sittings.id = written.id"
)
"""Two bound values per sitting, not the whole row's 19 (every bound value is converted while
the writer holds the GIL)."""
_INSERT_JOURNAL = "INSERT INTO journal (seq, sitting_id, kind, at, body, leaf, chain) VALUES "
_LAST_SEQ_INDEX = _SNAPSHOT_FIELDS.index("last_seq")
_EVENTS_OF_SITTING = (
    "SELECT seq, kind, at, body FROM journal WHERE sitting_id = ? AND kind <> 'answer' "
    "UNION ALL "
    "SELECT journal.seq, journal.kind, journal.at, journal.body FROM answers "
    "JOIN journal ON journal.seq = answers.journal_seq WHERE answers.sitting_id = ? "
    "ORDER BY 1"
)
"""A sitting's journal: its answers found through the answers table (clustered by sitting), the
rest through the partial index `journal_events_by_sitting`, which leaves answers out."""


def _only_last_seq_differs(before: tuple[Any, ...], row: tuple[Any, ...]) -> bool:
    cut = _LAST_SEQ_INDEX
    return before[:cut] == row[:cut] and before[cut + 1 :] == row[cut + 1 :]


def _stored(connection: sqlite3.Connection, row: Sequence[Any]) -> StoredSitting:
    values = dict(zip(_SNAPSHOT_FIELDS, row, strict=True))
    values["state"] = State(values["state"])
    snapshot = Snapshot(**values)
    answers = tuple(
        AnswerRecord(item_id, choice, bool(flagged), seq, at)
        for seq, item_id, choice, flagged, at in connection.execute(
            "SELECT seq, item_id, choice, flagged, at FROM answers WHERE sitting_id = ? "
            "ORDER BY seq",
            (snapshot.sitting_id,),
        )
    )
    return StoredSitting(snapshot, answers)


def read_journal(path: Path) -> Iterator[journal.Entry]:
    """Every journal entry in seq order, from a read-only connection (for the verifier)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for row in connection.execute(
            "SELECT seq, sitting_id, kind, at, body, leaf, chain FROM journal ORDER BY seq"
        ):
            yield journal.Entry(
                row[0], row[1], row[2], row[3], bytes(row[4]), bytes(row[5]), bytes(row[6])
            )
    finally:
        connection.close()


def read_exam_secret(path: Path, exam_id: str) -> bytes:
    """An exam's form secret, for auditors regenerating forms offline."""
    if not path.exists():
        raise StoreError(f"no database at {path}")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = connection.execute("SELECT secret FROM exams WHERE id = ?", (exam_id,)).fetchone()
    finally:
        connection.close()
    if row is None:
        raise StoreError(f"exam {exam_id!r} was never loaded into {path.parent}")
    return bytes(row[0])
