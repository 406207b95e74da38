"""Earlier exam days in the store a benchmark server opens: a node's later day, not its first.

Every sign-in and every start checks the person's earlier sittings (KZ-9, UA-7). On a fresh
store that history is empty, so a start storm on it cannot show what the check costs once a
node has served other exam days. These are written with the engine's own store before the
server opens it: final sittings of other people in an exam the server does not load, closed
long ago, with stored results, as earlier days leave them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from engine.store.sqlite import SQLiteStore

EARLIER_EXAM = "earlier-kz"
EARLIER_PART = "legislation"
DAY_S = 86_400.0


Rows = list[tuple[object, ...]]


def _rows(sittings: int, closed_at: float) -> tuple[Rows, Rows, Rows]:
    candidates: Rows = []
    sitting_rows: Rows = []
    results: Rows = []
    body = json.dumps({"scheme": "kz-prosecutor", "outcome": "pass", "score": 96})
    for n in range(sittings):
        candidate = f"earlier-{n:06d}"
        sitting = f"{EARLIER_EXAM}/{candidate}/{EARLIER_PART}"
        # "E…" is never a valid IIN, so none of these people is a benchmark candidate.
        document = f"E{n:011d}"
        candidates.append((EARLIER_EXAM, candidate, "Earlier Candidate", "room-0001", "", document))
        sitting_rows.append((sitting, EARLIER_EXAM, candidate, EARLIER_PART, closed_at))
        results.append((sitting, body))
    return candidates, sitting_rows, results


def _write(connection: sqlite3.Connection, sittings: int, closed_at: float) -> None:
    candidates, sitting_rows, results = _rows(sittings, closed_at)
    connection.executemany(
        "INSERT INTO candidates (exam_id, id, full_name, site_id, office, document) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        candidates,
    )
    connection.executemany(
        "INSERT INTO sittings (id, exam_id, candidate_id, part_id, state, time_limit_s, "
        "extra_s, paused_total_s, closed_at, close_reason, last_seq, lost_s) "
        "VALUES (?, ?, ?, ?, 'submitted', 5400, 0, 0, ?, 'submitted', 0, 0)",
        sitting_rows,
    )
    connection.executemany("INSERT INTO results (sitting_id, body) VALUES (?, ?)", results)


async def write_earlier_days(data_dir: Path, sittings: int) -> None:
    """`sittings` final sittings of earlier exam days in the store under `data_dir`."""
    if sittings <= 0:
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore(data_dir)
    await store.open()
    try:
        closed_at = time.time() - 90 * DAY_S
        await store.run(lambda connection: _write(connection, sittings, closed_at))
    finally:
        await store.close()
