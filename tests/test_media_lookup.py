"""The writer's joint lookup of what is stored already for a commit's uploads (engine/store)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from engine.fixation import Kind, MediaRecord
from engine.store.proctoring import LOOKUPS_PER_STATEMENT, SCHEMA, _placed_already


def _record(sitting: int, kind: Kind, seq: int, sha256: str = "new") -> MediaRecord:
    return MediaRecord(f"exam/c{sitting}/p1", kind, seq, "video/webm", 10, sha256, None, 1.0, "x")


def test_a_lookup_of_any_size_answers_every_upload_in_order(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "media.sqlite3", isolation_level=None)
    connection.executescript(SCHEMA)
    stored = [
        (f"exam/c{s}/p1", kind.value, seq, "video/webm", 10, f"h{s}-{seq}", None, 1.0, "x", 0, s, 0)
        for s in range(0, 60, 3)  # every third sitting has chunks 1..4 and still 1
        for kind, seqs in ((Kind.CHUNK, range(1, 5)), (Kind.SNAPSHOT, range(1, 2)))
        for seq in seqs
    ]
    connection.executemany(f"INSERT INTO media VALUES ({', '.join('?' * 12)})", stored)
    # More uploads than one statement asks about, in an order unlike the pieces' sizes.
    uploads = [
        _record(s % 60, Kind.CHUNK if s % 5 else Kind.SNAPSHOT, s % 6 + 1) for s in range(301)
    ]
    assert len(uploads) > 2 * LOOKUPS_PER_STATEMENT, "several statements, of several sizes"

    expected = []
    for upload in uploads:
        key = (upload.sitting_id, upload.kind.value)
        row = connection.execute(
            "SELECT sha256 FROM media WHERE sitting_id = ? AND kind = ? AND seq = ?",
            (*key, upload.seq),
        ).fetchone()
        (highest,) = connection.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM media WHERE sitting_id = ? AND kind = ?", key
        ).fetchone()
        expected.append((row[0] if row else None, highest))

    assert _placed_already(connection, uploads) == expected
    assert any(sha for sha, _ in expected) and any(sha is None for sha, _ in expected)
    assert _placed_already(connection, uploads[:1]) == expected[:1]
    assert _placed_already(connection, []) == []
