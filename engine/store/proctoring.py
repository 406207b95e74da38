"""Staff accounts and the fixation record, in the embedded store.

Both go through the store's writer thread (`SQLiteStore.run`), so they share its group commit
and its journal: every stored chunk is a journal event with its hash before it is acknowledged.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.exceptions import AuthError, StoreError
from engine.fixation import Arrival, Kind, MediaRecord, Upload, classify
from engine.model import Staff
from engine.store.file_child import SEGMENT_SECONDS, segment_started
from engine.store.file_process import Appended
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
    purged INTEGER NOT NULL DEFAULT 0, journal_seq INTEGER NOT NULL, byte_offset INTEGER,
    PRIMARY KEY (sitting_id, kind, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS media_kept_in ON media (path) WHERE purged = 0;
"""
ADDED_COLUMNS = {"media": {"byte_offset": "INTEGER"}}
"""Columns added since a table was first made: added to a store made before them, on open."""

MEDIA_COLUMNS = (
    "sitting_id, kind, seq, media_type, size, sha256, client_time, server_time, path, purged, "
    "byte_offset"
)

PLACED_ALREADY = (
    "SELECT w.column1, "
    "(SELECT sha256 FROM media m "
    "WHERE m.sitting_id = w.column2 AND m.kind = w.column3 AND m.seq = w.column4), "
    "(SELECT COALESCE(MAX(seq), 0) FROM media m "
    "WHERE m.sitting_id = w.column2 AND m.kind = w.column3) "
    "FROM (VALUES {values}) AS w"
)
"""What uploads' arrivals are decided on: per (index, sitting, kind, seq), the hash stored under
that number and the highest number stored (two index lookups each, one statement for all)."""
LOOKUPS_PER_STATEMENT = 128
"""The most uploads one lookup statement asks about (a power of two)."""
INSERT_MEDIA = f"INSERT INTO media ({MEDIA_COLUMNS}, journal_seq) VALUES "
SELECT_MEDIA = f"SELECT {MEDIA_COLUMNS} FROM media WHERE sitting_id = ? AND kind = ? AND seq = ?"


def _placed_already(
    connection: sqlite3.Connection, records: list[MediaRecord]
) -> list[tuple[str | None, int]]:
    """For each record: the SHA-256 stored under its number (or None), the highest number
    stored for its sitting and kind."""
    found: dict[int, tuple[str | None, int]] = {}
    start, size = 0, LOOKUPS_PER_STATEMENT
    while start < len(records):
        # Pieces of 128, 64, … 1 records, as `insert_many` writes: few statement texts, which
        # stay in sqlite3's statement cache instead of being parsed again every commit.
        while size > len(records) - start:
            size //= 2
        chunk = records[start : start + size]
        values = ", ".join(["(?, ?, ?, ?)"] * size)
        parameters = [
            value
            for index, record in enumerate(chunk, start)
            for value in (index, record.sitting_id, record.kind.value, record.seq)
        ]
        for index, sha256, highest in connection.execute(
            PLACED_ALREADY.format(values=values), parameters
        ):
            found[index] = (sha256, highest)
        start += size
    return [found[index] for index in range(len(records))]


@dataclass(frozen=True, slots=True)
class Stored:
    """What became of a media upload."""

    arrival: Arrival
    record: MediaRecord


class ProctoringRecords:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    async def open(self) -> None:
        def job(connection: sqlite3.Connection) -> None:
            # One statement at a time: executescript would commit the store's open batch.
            for statement in filter(str.strip, SCHEMA.split(";")):
                connection.execute(statement)
            for table, columns in ADDED_COLUMNS.items():
                present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
                for name, declared in columns.items():
                    if name not in present:
                        connection.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declared}")

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
        """Append an upload to a segment file and sync it, then record where it is, unless it
        repeats or clashes with one stored already.

        Deciding and recording happen on the writer thread, so two uploads of the same number
        cannot both win; the bytes of the one that loses stay in the segment, unrecorded, as
        do those of an upload a crash kept from its commit (`examhall fixation verify` counts
        them).
        """
        size = len(data)
        try:
            # Many a second on exam day, and it reads only the media table.
            return await self.store.run_after_appending(
                data, self._place_uploads, (upload, size), sees_answers=False
            )
        except OSError as error:
            raise StoreError(f"could not store media: {error}") from error

    async def place_media(self, upload: Upload, size: int, appended: Appended) -> Stored:
        """`store_media` for bytes the media process appended and synced already
        (engine/server/media_process.py): only the deciding and recording are left."""
        return await self.store.run_placed(
            self._place_uploads, (upload, size), appended, sees_answers=False
        )

    def _place_uploads(
        self, connection: sqlite3.Connection, uploads: list[tuple[tuple[Upload, int], Appended]]
    ) -> list[Stored]:
        """Decide, journal and record the uploads written since the last commit: one lookup,
        one journal statement and one media statement for all of them (writer thread)."""
        records = [
            upload.record(size, written.digest.hex(), written.segment, written.offset)
            for (upload, size), written in uploads
        ]
        stored_before = _placed_already(connection, records)
        placed: dict[tuple[str, str, int], MediaRecord] = {}
        highest: dict[tuple[str, str], int] = {}
        results: list[Stored] = []
        new: list[tuple[MediaRecord, Arrival]] = []
        for record, (sha_before, highest_before) in zip(records, stored_before, strict=True):
            key = (record.sitting_id, record.kind.value)
            earlier = placed.get((*key, record.seq))
            top = max(highest_before, highest.get(key, 0))
            same_seq = earlier.sha256 if earlier is not None else sha_before
            arrival = classify(record.seq, record.sha256, same_seq, top)
            if arrival in (Arrival.REPEAT, Arrival.CONFLICT):
                kept = earlier or _record(
                    connection.execute(SELECT_MEDIA, (*key, record.seq)).fetchone()
                )
                results.append(Stored(arrival, kept))
                continue
            placed[(*key, record.seq)] = record
            highest[key] = max(top, record.seq)
            new.append((record, arrival))
            results.append(Stored(arrival, record))
        journal_seqs = self.store.append_events(
            connection,
            [
                (
                    record.sitting_id,
                    f"media-{record.kind.value}",
                    record.server_time,
                    {**record.to_json(), "arrival": arrival.value},
                )
                for record, arrival in new
            ],
        )
        rows = [
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
                0,
                record.offset,
                journal_seq,
            )
            for (record, _), journal_seq in zip(new, journal_seqs, strict=True)
        ]
        self.store.insert_many(connection, INSERT_MEDIA, rows)
        return results

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
        """Delete the media of sittings closed before `cutoff`; the records stay.

        Their bytes are overwritten with zeros (a segment holds other sittings' uploads too)
        before the records say purged, and a segment is deleted once nothing in it is kept and
        it is well past its appends (file_child.SEGMENT_SECONDS)."""
        data_dir = self.store.data_dir

        def due(connection: sqlite3.Connection) -> list[MediaRecord]:
            rows = connection.execute(
                f"SELECT {', '.join('m.' + c for c in MEDIA_COLUMNS.split(', '))} FROM media m "
                "JOIN sittings s ON s.id = m.sitting_id "
                "WHERE m.purged = 0 AND s.closed_at IS NOT NULL AND s.closed_at < ?",
                (cutoff,),
            )
            return [_record(row) for row in rows]

        records = await self.store.run(due, sees_answers=False)
        await asyncio.to_thread(erase, data_dir, records)

        def mark(connection: sqlite3.Connection) -> list[str]:
            connection.executemany(
                "UPDATE media SET purged = 1 WHERE sitting_id = ? AND kind = ? AND seq = ?",
                [(r.sitting_id, r.kind.value, r.seq) for r in records],
            )
            by_sitting = Counter(record.sitting_id for record in records)
            for sitting_id, count in by_sitting.items():
                self.store.append_event(
                    connection, sitting_id, "media-purged", now, {"files": count}
                )
            return _segments_nothing_is_kept_in(connection, data_dir)

        finished = await self.store.run(mark, sees_answers=False)
        await asyncio.to_thread(remove_finished_segments, data_dir, finished, now)
        return len(records)


def _segments_nothing_is_kept_in(connection: sqlite3.Connection, data_dir: Path) -> list[str]:
    """The segment files (relative paths) that no record keeps anything in."""
    folder = data_dir / SQLiteStore.SEGMENTS
    names = sorted(os.listdir(folder)) if folder.is_dir() else []
    paths = [f"{SQLiteStore.SEGMENTS}/{name}" for name in names]
    return [
        path
        for path in paths
        if connection.execute(
            "SELECT 1 FROM media WHERE path = ? AND purged = 0 LIMIT 1", (path,)
        ).fetchone()
        is None
    ]


def erase(data_dir: Path, records: list[MediaRecord]) -> None:
    """Overwrite the records' bytes with zeros in their segments, synced once a segment (a
    whole file from before segments is deleted)."""
    by_segment: dict[str, list[MediaRecord]] = {}
    for record in records:
        if record.offset is None:
            (data_dir / record.path).unlink(missing_ok=True)
        else:
            by_segment.setdefault(record.path, []).append(record)
    for path, inside in by_segment.items():
        try:
            descriptor = os.open(data_dir / path, os.O_WRONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            for record in inside:
                assert record.offset is not None
                os.pwrite(descriptor, bytes(record.size), record.offset)
            os.fdatasync(descriptor)
        finally:
            os.close(descriptor)


def remove_finished_segments(data_dir: Path, paths: list[str], now: float) -> None:
    """Delete the segments among `paths` that no append can reach any more (started more than
    twice SEGMENT_SECONDS and an hour before `now`)."""
    for path in paths:
        started = segment_started(os.path.basename(path))
        if started is not None and started < now - 2 * SEGMENT_SECONDS - 3600:
            (data_dir / path).unlink(missing_ok=True)


def _record(row: Sequence[Any]) -> MediaRecord:
    sitting_id, kind, seq, media_type, size, sha, client_time, server_time, path, purged, at = row
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
        at,
    )


def read_media(database: Path, sitting_id: str | None = None) -> Iterator[MediaRecord]:
    """Every media record, or one sitting's, from a read-only connection (for the
    `examhall fixation` commands)."""
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        has_table = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'media'"
        ).fetchone()
        if not has_table:
            return
        where, parameters = ("WHERE sitting_id = ?", (sitting_id,)) if sitting_id else ("", ())
        for row in connection.execute(
            f"SELECT {MEDIA_COLUMNS} FROM media {where} ORDER BY sitting_id, kind, seq", parameters
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
