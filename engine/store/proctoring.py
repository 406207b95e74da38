"""Staff accounts and the fixation record, in the embedded store.

Both go through the store's writer thread (`SQLiteStore.run`), so they share its group commit
and its journal: every stored chunk is a journal event with its hash before it is acknowledged.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.exceptions import AuthError, StoreError
from engine.fixation import Arrival, Kind, MediaRecord, Upload, classify, sha256_hex
from engine.model import Staff
from engine.store.sqlite import SQLiteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS staff (
    exam_id TEXT NOT NULL, login TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
    sites TEXT NOT NULL, password_hash TEXT NOT NULL,
    PRIMARY KEY (exam_id, login)
);
CREATE TABLE IF NOT EXISTS media (
    sitting_id TEXT NOT NULL, kind TEXT NOT NULL, seq INTEGER NOT NULL,
    media_type TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
    client_time REAL, server_time REAL NOT NULL, path TEXT NOT NULL,
    purged INTEGER NOT NULL DEFAULT 0, journal_seq INTEGER NOT NULL,
    PRIMARY KEY (sitting_id, kind, seq)
) WITHOUT ROWID;
"""

MEDIA_COLUMNS = (
    "sitting_id, kind, seq, media_type, size, sha256, client_time, server_time, path, purged"
)

PLACE_UPLOAD = (
    "SELECT (SELECT sha256 FROM media WHERE sitting_id = ? AND kind = ? AND seq = ?), "
    "(SELECT COALESCE(MAX(seq), 0) FROM media WHERE sitting_id = ? AND kind = ?)"
)
"""What an upload's arrival is decided on: the hash stored under its number, the highest
number stored (one statement, two index lookups)."""


def _write_synced(path: str, data: bytes) -> None:
    """Plain system calls (each gives the GIL up and takes it back), not a buffered file."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view, written = memoryview(data), 0
        while written < len(data):
            written += os.write(descriptor, view[written:])
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(frozen=True, slots=True)
class Stored:
    """What became of a media upload."""

    arrival: Arrival
    record: MediaRecord


class ProctoringRecords:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self._uploads = itertools.count(1)
        """Names the temporary files of uploads in flight (unique within the process)."""

    async def open(self) -> None:
        def job(connection: sqlite3.Connection) -> None:
            # One statement at a time: executescript would commit the store's open batch.
            for statement in filter(str.strip, SCHEMA.split(";")):
                connection.execute(statement)

        await self.store.run(job)

    # -- staff -------------------------------------------------------------------------------

    async def known_staff(self, exam_id: str) -> set[str]:
        def job(connection: sqlite3.Connection) -> set[str]:
            rows = connection.execute("SELECT login FROM staff WHERE exam_id = ?", (exam_id,))
            return {row[0] for row in rows}

        return await self.store.run(job)

    async def register_staff(self, staff: Sequence[Staff], hashes: dict[str, str]) -> None:
        """Add staff not yet known with their password hashes; known ones keep theirs."""

        def job(connection: sqlite3.Connection) -> None:
            connection.executemany(
                "INSERT OR IGNORE INTO staff VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        s.exam_id,
                        s.login,
                        s.name,
                        s.role.value,
                        json.dumps(list(s.sites)),
                        hashes[s.login],
                    )
                    for s in staff
                    if s.login in hashes
                ],
            )

        await self.store.run(job)

    async def password_hash(self, exam_id: str, login: str) -> str:
        def job(connection: sqlite3.Connection) -> str:
            row = connection.execute(
                "SELECT password_hash FROM staff WHERE exam_id = ? AND login = ?",
                (exam_id, login),
            ).fetchone()
            if row is None:
                raise AuthError("unknown login or wrong password", code="bad_login")
            return str(row[0])

        return await self.store.run(job)

    # -- media -------------------------------------------------------------------------------

    async def store_media(self, upload: Upload, data: bytes) -> Stored:
        """Hash and fsync an upload, then place it at its final path and record it, unless it
        repeats or clashes.

        The file work runs on the store's file threads; placing and recording on the writer
        thread, so two uploads of the same number cannot both win.
        """
        final = os.path.join(self.store.data_dir, upload.path)
        folder, name = os.path.split(final)
        temporary = os.path.join(folder, f".upload-{next(self._uploads)}-{name}")

        def write() -> MediaRecord:
            record = upload.record(len(data), sha256_hex(data))
            try:
                _write_synced(temporary, data)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)  # a disk that filled up mid-write leaves no half file
                raise
            return record

        def job(connection: sqlite3.Connection, record: MediaRecord) -> Stored:
            key = (record.sitting_id, record.kind.value)
            same_seq_sha256, highest = connection.execute(
                PLACE_UPLOAD, (*key, record.seq, *key)
            ).fetchone()
            arrival = classify(record.seq, record.sha256, same_seq_sha256, highest)
            if arrival in (Arrival.REPEAT, Arrival.CONFLICT):
                os.unlink(temporary)
                row = connection.execute(
                    f"SELECT {MEDIA_COLUMNS} FROM media WHERE sitting_id = ? AND kind = ? "
                    "AND seq = ?",
                    (record.sitting_id, record.kind.value, record.seq),
                ).fetchone()
                return Stored(arrival, _record(row))
            os.replace(temporary, final)
            journal_seq = self.store.append_event(
                connection,
                record.sitting_id,
                f"media-{record.kind.value}",
                record.server_time,
                {**record.to_json(), "arrival": arrival.value},
            )
            connection.execute(
                f"INSERT INTO media ({MEDIA_COLUMNS}, journal_seq) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    record.sitting_id,
                    record.kind.value,
                    record.seq,
                    record.media_type,
                    record.size,
                    record.sha256,
                    record.client_time,
                    record.server_time,
                    record.path,
                    journal_seq,
                ),
            )
            return Stored(arrival, record)

        try:
            # Many a second on exam day, and it reads only the media table.
            return await self.store.run_after_file_work(write, job, sees_answers=False)
        except OSError as error:
            raise StoreError(f"could not store media: {error}") from error

    async def next_snapshot_seq(self, sitting_id: str) -> int:
        def job(connection: sqlite3.Connection) -> int:
            row = connection.execute(
                "SELECT max(seq) FROM media WHERE sitting_id = ? AND kind = 'snapshot'",
                (sitting_id,),
            ).fetchone()
            return int(row[0] or 0) + 1

        return await self.store.run(job, sees_answers=False)  # once per camera still

    async def media_of(self, sitting_id: str) -> list[MediaRecord]:
        def job(connection: sqlite3.Connection) -> list[MediaRecord]:
            rows = connection.execute(
                f"SELECT {MEDIA_COLUMNS} FROM media WHERE sitting_id = ? ORDER BY kind, seq",
                (sitting_id,),
            )
            return [_record(row) for row in rows]

        return await self.store.run(job)

    async def purge_closed_before(self, cutoff: float, now: float) -> int:
        """Delete the media files of sittings closed before `cutoff`; the records stay."""
        data_dir = self.store.data_dir

        def job(connection: sqlite3.Connection) -> int:
            rows = connection.execute(
                "SELECT m.sitting_id, m.kind, m.seq, m.path FROM media m "
                "JOIN sittings s ON s.id = m.sitting_id "
                "WHERE m.purged = 0 AND s.closed_at IS NOT NULL AND s.closed_at < ?",
                (cutoff,),
            ).fetchall()
            by_sitting: dict[str, int] = {}
            for sitting_id, kind, seq, path in rows:
                (data_dir / path).unlink(missing_ok=True)
                connection.execute(
                    "UPDATE media SET purged = 1 WHERE sitting_id = ? AND kind = ? AND seq = ?",
                    (sitting_id, kind, seq),
                )
                by_sitting[sitting_id] = by_sitting.get(sitting_id, 0) + 1
            for sitting_id, count in by_sitting.items():
                self.store.append_event(
                    connection, sitting_id, "media-purged", now, {"files": count}
                )
            return len(rows)

        return await self.store.run(job)


def _record(row: Sequence[Any]) -> MediaRecord:
    sitting_id, kind, seq, media_type, size, sha, client_time, server_time, path, purged = row
    return MediaRecord(
        sitting_id,
        Kind(kind),
        seq,
        media_type,
        size,
        sha,
        client_time,
        server_time,
        path,
        bool(purged),
    )


def read_media(database: Path) -> Iterator[MediaRecord]:
    """Every media record, from a read-only connection (for `examhall fixation verify`)."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        has_table = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'media'"
        ).fetchone()
        if not has_table:
            return
        for row in connection.execute(
            f"SELECT {MEDIA_COLUMNS} FROM media ORDER BY sitting_id, kind, seq"
        ):
            yield _record(row)
    finally:
        connection.close()


def read_media_journal(database: Path) -> dict[tuple[str, str, int], str]:
    """(sitting, kind, seq) → sha256 as the journal recorded them, to catch edited rows."""
    from engine.journal import decode_body

    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        hashes = {}
        for (body,) in connection.execute(
            "SELECT body FROM journal WHERE kind IN ('media-chunk', 'media-snapshot')"
        ):
            _, sitting_id, kind, _, data = decode_body(bytes(body))
            hashes[(sitting_id, kind.removeprefix("media-"), int(data["seq"]))] = str(
                data["sha256"]
            )
        return hashes
    finally:
        connection.close()
