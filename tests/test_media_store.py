"""Media recorded before segments: a store made then opens, and its files still verify."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.fixation import Kind, sha256_hex, stored_bytes, verify_files
from engine.store.proctoring import ProctoringRecords, read_media
from engine.store.sqlite import SQLiteStore

BEFORE_SEGMENTS = """
CREATE TABLE media (
    sitting_id TEXT NOT NULL, kind TEXT NOT NULL, seq INTEGER NOT NULL,
    media_type TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
    client_time REAL, server_time REAL NOT NULL, path TEXT NOT NULL,
    purged INTEGER NOT NULL DEFAULT 0, journal_seq INTEGER NOT NULL,
    PRIMARY KEY (sitting_id, kind, seq)
) WITHOUT ROWID;
"""


async def test_a_store_from_before_segments_gains_the_column_and_keeps_its_files(
    tmp_path: Path,
) -> None:
    chunk = b"\x1a\x45\xdf\xa3 recorded in its own file"
    path = "media/exam/candidate/part/chunk-000001.webm"
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_bytes(chunk)
    database = tmp_path / SQLiteStore.FILE_NAME
    with sqlite3.connect(database) as old:
        old.executescript(BEFORE_SEGMENTS)
        old.execute(
            "INSERT INTO media VALUES ('s1', 'chunk', 1, 'video/webm', ?, ?, NULL, 1.0, ?, 0, 1)",
            (len(chunk), sha256_hex(chunk), path),
        )
    old.close()

    store = SQLiteStore(tmp_path)
    await store.open()
    records = ProctoringRecords(store)
    await records.open()
    (record,) = await records.media_of("s1")
    await store.close()

    assert (record.kind, record.offset, record.path) == (Kind.CHUNK, None, path)
    assert stored_bytes(tmp_path, record) == chunk
    assert verify_files(tmp_path, read_media(database)) == []
    with sqlite3.connect(database) as after:
        columns = [row[1] for row in after.execute("PRAGMA table_info(media)")]
    after.close()
    assert columns[-1] == "byte_offset"
