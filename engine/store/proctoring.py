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
from engine.fixation import Arrival, Kind, MediaRecord, Upload, classify
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


@dataclass(frozen=True, slots=True)
class _Written:
    """An upload on disk, waiting for the writer to place and record it."""

    upload: Upload
    size: int
    at: str
    """Where it was written: its final path, or a temporary one if that existed."""
    final: str


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
        """Write and fsync an upload, then record it at its final path, unless it repeats or
        clashes with one stored already.

        The file is written straight to its final name in the store's file process, so the usual
        upload needs no rename; if that name exists (the same number again, or a file a crash
        left before its commit), it is written to a temporary name and the writer decides.
        Placing and recording happen on the writer thread, so two uploads of the same number
        cannot both win.
        """
        final = os.path.join(self.store.data_dir, upload.path)

        async def write(at: str, *, exclusive: bool) -> Stored:
            # Many a second on exam day, and it reads only the media table.
            written = _Written(upload, len(data), at, final)
            return await self.store.run_after_writing(
                at, data, self._place_uploads, written, exclusive=exclusive, sees_answers=False
            )

        try:
            try:
                return await write(final, exclusive=True)
            except FileExistsError:
                folder, name = os.path.split(final)
                temporary = os.path.join(folder, f".upload-{next(self._uploads)}-{name}")
                return await write(temporary, exclusive=False)
        except OSError as error:
            raise StoreError(f"could not store media: {error}") from error

    def _place_uploads(
        self, connection: sqlite3.Connection, uploads: list[tuple[_Written, bytes]]
    ) -> list[Stored]:
        """Decide, journal and record the uploads written since the last commit: one lookup,
        one journal statement and one media statement for all of them (writer thread)."""
        records = [written.upload.record(written.size, digest.hex()) for written, digest in uploads]
        stored_before = _placed_already(connection, records)
        placed: dict[tuple[str, str, int], MediaRecord] = {}
        highest: dict[tuple[str, str], int] = {}
        results: list[Stored] = []
        new: list[tuple[MediaRecord, Arrival]] = []
        renames: list[tuple[str, str]] = []
        for (written, _), record, (sha_before, highest_before) in zip(
            uploads, records, stored_before, strict=True
        ):
            key = (record.sitting_id, record.kind.value)
            earlier = placed.get((*key, record.seq))
            top = max(highest_before, highest.get(key, 0))
            same_seq = earlier.sha256 if earlier is not None else sha_before
            arrival = classify(record.seq, record.sha256, same_seq, top)
            if arrival in (Arrival.REPEAT, Arrival.CONFLICT):
                kept = earlier or _record(
                    connection.execute(SELECT_MEDIA, (*key, record.seq)).fetchone()
                )
                kept_at = os.path.join(self.store.data_dir, kept.path)
                if written.at != kept_at or kept.purged:  # else the file there is the kept one's
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(written.at)
                results.append(Stored(arrival, kept))
                continue
            if written.at != written.final:
                renames.append((written.at, written.final))
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
                journal_seq,
            )
            for (record, _), journal_seq in zip(new, journal_seqs, strict=True)
        ]
        self.store.insert_many(connection, INSERT_MEDIA, rows)
        for temporary, final in renames:  # last: a statement that fails leaves no file moved
            os.replace(temporary, final)
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
