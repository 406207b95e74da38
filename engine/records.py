"""The results records in the embedded store: signatures, working group, appeals, score changes,
admission refusals and issued documents — their tables, writes and reads.

Writes are functions of a connection, meant to run inside `SQLiteStore.run` (the store's only
writer, so they share its group commit), and each one that changes a record appends a journal
event with `append_event`, so the tamper-evident log also proves who signed, voted and changed
what. Reads take any connection: the writer's, inside a job, or a read-only one opened by
`read_only` for offline commands while the server may be running.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from engine import journal
from engine.book import (
    AppealRecord,
    GroupMember,
    RatingApproval,
    ScoreChange,
    SignatureRecord,
    SittingRecord,
)
from engine.exceptions import StoreError
from engine.model import Candidate
from engine.sitting import ID_END, sitting_range
from engine.store.sqlite import SQLiteStore

T = TypeVar("T")

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS result_signatures (
        sitting_id TEXT NOT NULL, role TEXT NOT NULL, signer TEXT NOT NULL, at REAL NOT NULL,
        statement TEXT NOT NULL, seal TEXT NOT NULL, journal_seq INTEGER NOT NULL,
        PRIMARY KEY (sitting_id, role))""",
    """CREATE TABLE IF NOT EXISTS group_members (
        exam_id TEXT NOT NULL, member_id TEXT NOT NULL, full_name TEXT NOT NULL,
        role TEXT NOT NULL, PRIMARY KEY (exam_id, member_id))""",
    """CREATE TABLE IF NOT EXISTS appeals (
        number INTEGER PRIMARY KEY AUTOINCREMENT, exam_id TEXT NOT NULL,
        candidate_id TEXT NOT NULL, part_id TEXT, subject TEXT NOT NULL, grounds TEXT NOT NULL,
        filed_by TEXT NOT NULL, filed_at REAL NOT NULL, decide_by REAL NOT NULL,
        status TEXT NOT NULL, decided_at REAL, present TEXT NOT NULL DEFAULT '[]',
        votes TEXT NOT NULL DEFAULT '{}', group_size INTEGER NOT NULL DEFAULT 0,
        quorum_needed INTEGER NOT NULL DEFAULT 0, candidate_present INTEGER NOT NULL DEFAULT 0,
        decision TEXT NOT NULL DEFAULT '', score_before REAL, score_after REAL)""",
    """CREATE TABLE IF NOT EXISTS result_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT, sitting_id TEXT NOT NULL, at REAL NOT NULL,
        cause TEXT NOT NULL, before TEXT NOT NULL, after TEXT NOT NULL,
        journal_seq INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS admission_refusals (
        id INTEGER PRIMARY KEY AUTOINCREMENT, exam_id TEXT NOT NULL, candidate_id TEXT NOT NULL,
        part_id TEXT, at REAL NOT NULL, rule TEXT NOT NULL, reason TEXT NOT NULL,
        journal_seq INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS rating_approvals (
        id INTEGER PRIMARY KEY AUTOINCREMENT, exam_id TEXT NOT NULL, rating_group TEXT NOT NULL,
        at REAL NOT NULL, body TEXT NOT NULL, seal TEXT NOT NULL, journal_seq INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS issued_documents (
        id INTEGER PRIMARY KEY AUTOINCREMENT, exam_id TEXT NOT NULL, kind TEXT NOT NULL,
        name TEXT NOT NULL, files TEXT NOT NULL, at REAL NOT NULL, journal_seq INTEGER NOT NULL)""",
)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS candidates_by_document ON candidates (document)",
    "CREATE INDEX IF NOT EXISTS admission_refusals_by_candidate "
    "ON admission_refusals (exam_id, candidate_id)",
)
"""Admission finds a person's earlier sittings by identity document (KZ-9 across exams), and
their latest non-admission notice (every refused sign-in adds one) at every check."""
FINAL_STATES = ("submitted", "expired", "terminated", "no-show")


class RecordStore(Protocol):
    """What these records need of a store: the writer's `run` and the journal's `append_event`.

    `engine.store.sqlite.SQLiteStore` is one.
    """

    data_dir: Path

    async def run(
        self, job: Callable[[sqlite3.Connection], T], *, sees_answers: bool = True
    ) -> T: ...

    def append_event(
        self, connection: sqlite3.Connection, sitting_id: str, kind: str, at: float, data: Any
    ) -> int: ...


_SCHEMA_NAMES = tuple(
    statement.split("IF NOT EXISTS", 1)[1].split()[0] for statement in (*SCHEMA, *INDEXES)
)
_COUNT_SCHEMA_NAMES = (
    "SELECT count(*) FROM sqlite_master WHERE name IN (" + ", ".join("?" * len(_SCHEMA_NAMES)) + ")"
)


def ensure_schema(connection: sqlite3.Connection) -> None:
    """Create the tables if missing; statement by statement, so an open batch is not committed.

    Every admission check calls this (twice per candidate in a start storm). On the store's own
    connection, once all were found in place, the schema's version number answers (1 µs, where
    the lookup in `sqlite_master` took 19 µs); on others, that lookup; the creation runs once.
    """
    known = getattr(connection, "schemas_in_place", None)
    version = -1
    if known is not None:
        (version,) = connection.execute("PRAGMA schema_version").fetchone()
        if known.get(__name__) == version:
            return
    (present,) = connection.execute(_COUNT_SCHEMA_NAMES, _SCHEMA_NAMES).fetchone()
    if present == len(_SCHEMA_NAMES):
        if known is not None:
            known[__name__] = version
        return
    for statement in (*SCHEMA, *INDEXES):
        connection.execute(statement)


@contextlib.contextmanager
def read_only(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the data directory's database, safe beside a running server."""
    path = data_dir / SQLiteStore.FILE_NAME
    if not path.exists():
        raise StoreError(f"no database at {path}")
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield connection
    finally:
        connection.close()


def has_table(connection: sqlite3.Connection, table: str) -> bool:
    row = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None


# --- the core's tables, read -------------------------------------------------------------------


def load_candidates(connection: sqlite3.Connection, exam_id: str) -> dict[str, Candidate]:
    rows = connection.execute(
        "SELECT id, full_name, site_id, office, document FROM candidates WHERE exam_id = ?",
        (exam_id,),
    )
    return {row[0]: Candidate(row[0], exam_id, row[1], row[2], row[3], row[4]) for row in rows}


def load_sittings(
    connection: sqlite3.Connection, exam_id: str, candidate_id: str | None = None
) -> dict[tuple[str, str], SittingRecord]:
    """The exam's sittings by (candidate, part), with who terminated or marked them."""
    query = (
        "SELECT id, candidate_id, part_id, state, language, started_at, closed_at, close_reason "
        "FROM sittings WHERE id >= ? AND id < ? AND exam_id = ?"
    )
    records = {}
    for row in connection.execute(query, (*sitting_range(exam_id, candidate_id), exam_id)):
        closed_by = _closed_by(connection, row[0]) if row[3] in ("terminated", "no-show") else ""
        records[(row[1], row[2])] = SittingRecord(
            row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], closed_by
        )
    return records


def _closed_by(connection: sqlite3.Connection, sitting_id: str) -> str:
    row = connection.execute(
        "SELECT body FROM journal WHERE sitting_id = ? AND kind <> 'answer' "
        "AND kind IN ('terminated', 'no-show') "
        "ORDER BY seq DESC LIMIT 1",
        (sitting_id,),
    ).fetchone()
    if row is None:
        return ""
    by = journal.decode_body(bytes(row[0]))[4].get("by", "")
    return by if isinstance(by, str) else ""


def load_result_bodies(
    connection: sqlite3.Connection, exam_id: str, candidate_id: str | None = None
) -> dict[str, dict[str, Any]]:
    """Stored result JSON by sitting id (a body may be ``{"error": …}`` if scoring failed)."""
    rows = connection.execute(
        "SELECT sitting_id, body FROM results WHERE sitting_id >= ? AND sitting_id < ?",
        sitting_range(exam_id, candidate_id),
    )
    return {sitting_id: json.loads(body) for sitting_id, body in rows}


def load_answers(
    connection: sqlite3.Connection, sitting_ids: Sequence[str]
) -> dict[str, dict[str, int | None]]:
    """Each sitting's latest choice per item (original option index; None if cleared)."""
    answers: dict[str, dict[str, int | None]] = {sitting_id: {} for sitting_id in sitting_ids}
    for sitting_id in sitting_ids:
        rows = connection.execute(
            "SELECT item_id, choice FROM answers WHERE sitting_id = ? ORDER BY seq", (sitting_id,)
        )
        for item_id, choice in rows:
            answers[sitting_id][item_id] = choice
    return answers


def load_staff_names(connection: sqlite3.Connection, exam_id: str) -> dict[str, str]:
    """Proctors' display names by login, when the proctoring tables exist."""
    if not has_table(connection, "staff"):
        return {}
    rows = connection.execute("SELECT login, name FROM staff WHERE exam_id = ?", (exam_id,))
    return dict(rows.fetchall())


def load_history(
    connection: sqlite3.Connection, document: str, exam_id: str, candidate_id: str
) -> list[tuple[str, str, str, str, float | None, str | None]]:
    """Every final sitting of one person: (exam, part, candidate, state, closed at, stored result
    JSON). A person is their identity document in any exam, else this exam's candidate id.

    One statement either way, reading only the person's own sittings (a range of the key)."""
    if document:
        rows = connection.execute(_HISTORY_OF_DOCUMENT, (document, *FINAL_STATES))
    else:
        rows = connection.execute(
            _HISTORY_OF_CANDIDATE, (*sitting_range(exam_id, candidate_id), *FINAL_STATES)
        )
    return sorted(rows.fetchall(), key=lambda row: row[4] or 0.0)


# `+s.state`: the state index must not be chosen. It leads SQLite to walk every final sitting
# the store holds, not the person's few: 8.4–8.8 ms an admission check (twice per candidate)
# with 50,000 from earlier exam days, against 15–27 µs over the key's range.
_HISTORY_COLUMNS = "SELECT s.exam_id, s.part_id, s.candidate_id, s.state, s.closed_at, r.body "
_HISTORY_OF_CANDIDATE = (
    _HISTORY_COLUMNS + "FROM sittings s LEFT JOIN results r ON r.sitting_id = s.id "
    "WHERE s.id >= ? AND s.id < ? AND +s.state IN (?, ?, ?, ?)"
)
_HISTORY_OF_DOCUMENT = (
    _HISTORY_COLUMNS
    + "FROM candidates c CROSS JOIN sittings s "  # CROSS: the person first, then their range
    "ON s.id >= c.exam_id || '/' || c.id || '/' "
    f"AND s.id < c.exam_id || '/' || c.id || '{ID_END}' "
    "LEFT JOIN results r ON r.sitting_id = s.id "
    "WHERE c.document = ? AND +s.state IN (?, ?, ?, ?)"
)


# --- signatures --------------------------------------------------------------------------------


def insert_signature(
    connection: sqlite3.Connection,
    store: RecordStore,
    record: SignatureRecord,
    seal: Mapping[str, Any],
) -> int:
    seq = store.append_event(
        connection,
        record.sitting_id,
        f"result-signed-by-{record.role}",
        record.at,
        {"signer": record.signer, "key_id": record.key_id, "signature": record.signature},
    )
    connection.execute(
        "INSERT INTO result_signatures VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            record.sitting_id,
            record.role,
            record.signer,
            record.at,
            json.dumps(dict(record.statement), ensure_ascii=False, sort_keys=True),
            json.dumps(dict(seal), sort_keys=True),
            seq,
        ),
    )
    return seq


def load_signatures(
    connection: sqlite3.Connection, exam_id: str, candidate_id: str | None = None
) -> dict[str, dict[str, SignatureRecord]]:
    """The recorded signatures of an exam's (or one candidate's) results, by sitting and role."""
    if not has_table(connection, "result_signatures"):
        return {}
    rows = connection.execute(
        "SELECT sitting_id, role, signer, at, statement, seal FROM result_signatures "
        "WHERE sitting_id >= ? AND sitting_id < ?",
        sitting_range(exam_id, candidate_id),
    )
    found: dict[str, dict[str, SignatureRecord]] = {}
    for sitting_id, role, signer, at, statement, seal in rows:
        sealed = json.loads(seal)
        found.setdefault(sitting_id, {})[role] = SignatureRecord(
            sitting_id,
            role,
            signer,
            at,
            sealed["key_id"],
            sealed["signature"],
            json.loads(statement),
        )
    return found


def load_seal(connection: sqlite3.Connection, sitting_id: str, role: str) -> tuple[str, str] | None:
    """A stored signature's (statement JSON, seal JSON), to re-verify it."""
    if not has_table(connection, "result_signatures"):
        return None
    row = connection.execute(
        "SELECT statement, seal FROM result_signatures WHERE sitting_id = ? AND role = ?",
        (sitting_id, role),
    ).fetchone()
    return None if row is None else (row[0], row[1])


# --- the working group -------------------------------------------------------------------------


def replace_group(
    connection: sqlite3.Connection,
    store: RecordStore,
    exam_id: str,
    members: Sequence[GroupMember],
    at: float,
) -> int:
    connection.execute("DELETE FROM group_members WHERE exam_id = ?", (exam_id,))
    connection.executemany(
        "INSERT INTO group_members VALUES (?, ?, ?, ?)",
        [(exam_id, m.id, m.full_name, m.role) for m in members],
    )
    return store.append_event(
        connection,
        "",
        "working-group-set",
        at,
        {"exam": exam_id, "members": [[m.id, m.full_name, m.role] for m in members]},
    )


def load_group(connection: sqlite3.Connection, exam_id: str) -> tuple[GroupMember, ...]:
    if not has_table(connection, "group_members"):
        return ()
    rows = connection.execute(
        "SELECT member_id, full_name, role FROM group_members WHERE exam_id = ? ORDER BY member_id",
        (exam_id,),
    )
    return tuple(GroupMember(*row) for row in rows)


# --- appeals -----------------------------------------------------------------------------------

_APPEAL_COLUMNS = (
    "number, candidate_id, part_id, subject, grounds, filed_by, filed_at, decide_by, status, "
    "decided_at, present, votes, group_size, quorum_needed, candidate_present, decision, "
    "score_before, score_after"
)


def insert_appeal(
    connection: sqlite3.Connection, store: RecordStore, exam_id: str, appeal: AppealRecord
) -> int:
    """Store a filed appeal; returns its number."""
    cursor = connection.execute(
        "INSERT INTO appeals (exam_id, candidate_id, part_id, subject, grounds, filed_by, "
        "filed_at, decide_by, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'filed')",
        (
            exam_id,
            appeal.candidate_id,
            appeal.part_id,
            appeal.subject,
            appeal.grounds,
            appeal.filed_by,
            appeal.filed_at,
            appeal.decide_by,
        ),
    )
    number = int(cursor.lastrowid or 0)
    store.append_event(
        connection,
        _sitting_of(exam_id, appeal),
        "appeal-filed",
        appeal.filed_at,
        {
            "number": number,
            "subject": appeal.subject,
            "by": appeal.filed_by,
            "grounds": appeal.grounds,
            "decide_by": appeal.decide_by,
        },
    )
    return number


def record_decision(
    connection: sqlite3.Connection, store: RecordStore, exam_id: str, appeal: AppealRecord
) -> None:
    """Store the decision fields of `appeal` (already decided) and journal the votes."""
    assert appeal.decided_at is not None
    connection.execute(
        "UPDATE appeals SET status = ?, decided_at = ?, present = ?, votes = ?, group_size = ?, "
        "quorum_needed = ?, candidate_present = ?, decision = ?, score_before = ?, "
        "score_after = ? WHERE number = ? AND exam_id = ?",
        (
            appeal.status,
            appeal.decided_at,
            json.dumps(list(appeal.present)),
            json.dumps(dict(appeal.votes), sort_keys=True),
            appeal.group_size,
            appeal.quorum_needed,
            int(appeal.candidate_present),
            appeal.decision,
            appeal.score_before,
            appeal.score_after,
            appeal.number,
            exam_id,
        ),
    )
    store.append_event(
        connection,
        _sitting_of(exam_id, appeal),
        "appeal-decided",
        appeal.decided_at,
        {
            "number": appeal.number,
            "status": appeal.status,
            "present": list(appeal.present),
            "votes": dict(appeal.votes),
            "group_size": appeal.group_size,
            "decision": appeal.decision,
            "score_before": appeal.score_before,
            "score_after": appeal.score_after,
        },
    )


def load_appeals(
    connection: sqlite3.Connection, exam_id: str, number: int | None = None
) -> list[AppealRecord]:
    if not has_table(connection, "appeals"):
        return []
    query = f"SELECT {_APPEAL_COLUMNS} FROM appeals WHERE exam_id = ?"
    arguments: tuple[Any, ...] = (exam_id,)
    if number is not None:
        query += " AND number = ?"
        arguments += (number,)
    appeals = []
    for row in connection.execute(query + " ORDER BY number", arguments):
        values = list(row)
        values[10] = tuple(json.loads(values[10]))
        values[11] = json.loads(values[11])
        values[14] = bool(values[14])
        appeals.append(AppealRecord(*values))
    return appeals


def _sitting_of(exam_id: str, appeal: AppealRecord) -> str:
    if appeal.part_id:
        return f"{exam_id}/{appeal.candidate_id}/{appeal.part_id}"
    return ""


# --- score changes -----------------------------------------------------------------------------


def change_result(
    connection: sqlite3.Connection,
    store: RecordStore,
    sitting_id: str,
    after: Mapping[str, Any],
    cause: str,
    at: float,
) -> ScoreChange:
    """Write a new result through to the results table, keeping the old one and journaling both.

    A sitting without a stored result (scoring failed before) gets one; its "before" is empty.
    """
    row = connection.execute(
        "SELECT body FROM results WHERE sitting_id = ?", (sitting_id,)
    ).fetchone()
    before_text = row[0] if row is not None else "{}"
    before = json.loads(before_text)
    after_text = json.dumps(dict(after), ensure_ascii=False, sort_keys=True)
    seq = store.append_event(
        connection,
        sitting_id,
        "score-changed",
        at,
        {
            "cause": cause,
            "score_before": before.get("score"),
            "score_after": after.get("score"),
            "before": before_text,
            "after": after_text,
        },
    )
    connection.execute(
        "INSERT OR REPLACE INTO results (sitting_id, body) VALUES (?, ?)", (sitting_id, after_text)
    )
    connection.execute(
        "INSERT INTO result_changes (sitting_id, at, cause, before, after, journal_seq) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (sitting_id, at, cause, before_text, after_text, seq),
    )
    return ScoreChange(
        sitting_id, at, cause, float(before.get("score", 0.0)), float(after.get("score", 0.0))
    )


def load_changes(connection: sqlite3.Connection, exam_id: str) -> list[ScoreChange]:
    if not has_table(connection, "result_changes"):
        return []
    rows = connection.execute(
        "SELECT sitting_id, at, cause, before, after FROM result_changes "
        "WHERE sitting_id >= ? AND sitting_id < ? ORDER BY id",
        sitting_range(exam_id),
    )
    return [
        ScoreChange(
            sitting_id,
            at,
            cause,
            float(json.loads(before).get("score", 0.0)),
            float(json.loads(after).get("score", 0.0)),
        )
        for sitting_id, at, cause, before, after in rows
    ]


# --- admission refusals and issued documents ---------------------------------------------------


def insert_refusal(
    connection: sqlite3.Connection,
    store: RecordStore,
    exam_id: str,
    candidate_id: str,
    part_id: str | None,
    at: float,
    rule: str,
    reason: str,
) -> int:
    sitting_id = f"{exam_id}/{candidate_id}/{part_id}" if part_id else ""
    seq = store.append_event(
        connection,
        sitting_id,
        "admission-refused",
        at,
        {"exam": exam_id, "candidate": candidate_id, "rule": rule, "reason": reason},
    )
    connection.execute(
        "INSERT INTO admission_refusals (exam_id, candidate_id, part_id, at, rule, reason, "
        "journal_seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (exam_id, candidate_id, part_id, at, rule, reason, seq),
    )
    return seq


def last_refusal(
    connection: sqlite3.Connection, exam_id: str, candidate_id: str, *, ensured: bool = False
) -> tuple[float, str, str] | None:
    """The latest non-admission notice of a candidate: (at, rule, reason).

    `ensured`: this job ran `ensure_schema`, so the table is there (no lookup for it).
    """
    if not ensured and not has_table(connection, "admission_refusals"):
        return None
    row = connection.execute(
        "SELECT at, rule, reason FROM admission_refusals WHERE exam_id = ? AND candidate_id = ? "
        "ORDER BY id DESC LIMIT 1",
        (exam_id, candidate_id),
    ).fetchone()
    return None if row is None else (float(row[0]), str(row[1]), str(row[2]))


def insert_issued(
    connection: sqlite3.Connection,
    store: RecordStore,
    exam_id: str,
    kind: str,
    name: str,
    files: Mapping[str, str],
    at: float,
    sitting_id: str = "",
) -> int:
    """Record that a sealed document was written: its files and their SHA-256."""
    seq = store.append_event(
        connection,
        sitting_id,
        "document-issued",
        at,
        {"exam": exam_id, "kind": kind, "name": name, "files": dict(files)},
    )
    connection.execute(
        "INSERT INTO issued_documents (exam_id, kind, name, files, at, journal_seq) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (exam_id, kind, name, json.dumps(dict(files), sort_keys=True), at, seq),
    )
    return seq


def insert_rating_approval(
    connection: sqlite3.Connection,
    store: RecordStore,
    approval: RatingApproval,
    seal: Mapping[str, Any],
) -> int:
    """Store the group's vote on a rating list with its seal, and journal it."""
    body = approval_json(approval)
    seq = store.append_event(connection, "", "rating-voted", approval.at, body)
    connection.execute(
        "INSERT INTO rating_approvals (exam_id, rating_group, at, body, seal, journal_seq) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (
            approval.exam_id,
            approval.group,
            approval.at,
            json.dumps(body, sort_keys=True, ensure_ascii=False),
            json.dumps(dict(seal), sort_keys=True),
            seq,
        ),
    )
    return seq


def load_rating_approvals(
    connection: sqlite3.Connection, exam_id: str
) -> dict[str, RatingApproval]:
    """The latest vote on each rating group's list."""
    if not has_table(connection, "rating_approvals"):
        return {}
    latest: dict[str, RatingApproval] = {}
    for (body,) in connection.execute(
        "SELECT body FROM rating_approvals WHERE exam_id = ? ORDER BY id", (exam_id,)
    ):
        data = json.loads(body)
        approval = RatingApproval(
            data["exam"],
            data["group"],
            float(data["at"]),
            tuple(data["present"]),
            dict(data["votes"]),
            int(data["group_size"]),
            int(data["quorum_needed"]),
            bool(data["approved"]),
            str(data["list_sha256"]),
            str(data["protocol"]),
        )
        latest[approval.group] = approval
    return latest


def approval_json(approval: RatingApproval) -> dict[str, Any]:
    return {
        "exam": approval.exam_id,
        "group": approval.group,
        "at": approval.at,
        "present": list(approval.present),
        "votes": dict(approval.votes),
        "group_size": approval.group_size,
        "quorum_needed": approval.quorum_needed,
        "approved": approval.approved,
        "list_sha256": approval.list_sha256,
        "protocol": approval.protocol,
    }
