"""Taking one media upload, whichever way it came: over HTTP (engine/server/media.py) or the
media socket (engine/server/media_socket.py).

A chunk is appended to a segment file and synced (engine/store/file_child.py), then recorded
(size, media type, SHA-256, client and server time, segment and offset) in one store job that
also journals it; only then is it acknowledged. Anything wrong is refused with a code, and the
refusal is itself recorded as an irregularity for the proctor — nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass

from engine.detection import Finding
from engine.exceptions import StoreError
from engine.fixation import (
    MAX_CHUNK_BYTES,
    MAX_SNAPSHOT_BYTES,
    Arrival,
    Kind,
    MediaRecord,
    Upload,
    chunk_problem,
    snapshot_problem,
)
from engine.server.hall import Hall, LiveSitting
from engine.store.file_process import Appended
from engine.store.proctoring import ProctoringRecords, Stored


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an upload was not taken: `status` for HTTP, `code` and `message` for everyone."""

    status: int
    code: str
    message: str


def refusal_if_closed(live: LiveSitting) -> Refusal | None:
    if live.sitting.state.is_final:
        return Refusal(410, "sitting_closed", "the sitting is closed; recording is over")
    return None


def seq_refusal(seq: int) -> Refusal | None:
    if seq < 1:
        return Refusal(400, "bad_seq", "chunk numbers start at 1")
    return None


@dataclass(frozen=True, slots=True)
class Unfit:
    """An upload refused for its own bytes or number, and what the proctor is told of it."""

    refusal: Refusal
    finding: Finding | None


def unfit_chunk(seq: int, media_type: str, data: bytes | None) -> Unfit | None:
    """Why chunk `seq` cannot be taken as it is, or None; `data` None: too large to read."""
    if (bad_seq := seq_refusal(seq)) is not None:
        return Unfit(bad_seq, None)
    if data is None or len(data) > MAX_CHUNK_BYTES:
        return Unfit(
            Refusal(413, "chunk_too_large", f"a chunk may have at most {MAX_CHUNK_BYTES} bytes"),
            Finding("media-oversized", f"chunk {seq} over {MAX_CHUNK_BYTES} bytes", 2),
        )
    problem = chunk_problem(media_type, data, first=seq == 1)
    if problem is not None:
        return Unfit(
            Refusal(415, "bad_media", problem), Finding("media-bad", f"chunk {seq}: {problem}", 2)
        )
    return None


def unfit_snapshot(media_type: str, data: bytes | None) -> Unfit | None:
    """Why a camera still cannot be taken as it is, or None; `data` None: too large to read."""
    if data is None or len(data) > MAX_SNAPSHOT_BYTES:
        message = f"a still may have at most {MAX_SNAPSHOT_BYTES} bytes"
        return Unfit(Refusal(413, "snapshot_too_large", message), None)
    problem = snapshot_problem(media_type, data)
    if problem is not None:
        return Unfit(
            Refusal(415, "bad_media", problem), Finding("media-bad", f"camera still: {problem}", 1)
        )
    return None


async def refuse_unfit(hall: Hall, live: LiveSitting, unfit: Unfit) -> Refusal:
    if unfit.finding is not None:
        await hall.note(live, unfit.finding, "server")
    return unfit.refusal


async def take_chunk(
    hall: Hall,
    live: LiveSitting,
    seq: int,
    media_type: str,
    data: bytes | None,
    client_time: float | None,
) -> MediaRecord | Refusal:
    """Check, store and record chunk `seq`; `data` None means it was too large to read."""
    if (closed := refusal_if_closed(live)) is not None:
        return closed
    if (unfit := unfit_chunk(seq, media_type, data)) is not None:
        return await refuse_unfit(hall, live, unfit)
    assert data is not None
    upload = Upload(live.sitting.id, Kind.CHUNK, seq, media_type, client_time, hall.now())
    return await _store(hall, live, upload, data)


async def take_snapshot(
    hall: Hall, live: LiveSitting, media_type: str, data: bytes | None
) -> MediaRecord | Refusal:
    """Check, number and store a camera still; `data` None means it was too large to read."""
    if (closed := refusal_if_closed(live)) is not None:
        return closed
    if (unfit := unfit_snapshot(media_type, data)) is not None:
        return await refuse_unfit(hall, live, unfit)
    assert data is not None
    async with live.media_lock:
        seq = await _records(hall).next_snapshot_seq(live.sitting.id)
        upload = Upload(live.sitting.id, Kind.SNAPSHOT, seq, media_type, None, hall.now())
        return await _store(hall, live, upload, data)


async def take_placed(
    hall: Hall,
    live: LiveSitting,
    kind: Kind,
    seq: int,
    media_type: str,
    client_time: float | None,
    size: int,
    appended: Appended,
) -> MediaRecord | Refusal:
    """Record an upload the media process checked, appended and synced already
    (engine/server/media_process.py); a camera still gets its number here (`seq` is ignored)."""
    if (closed := refusal_if_closed(live)) is not None:
        return closed
    records = _records(hall)
    if kind is Kind.CHUNK:
        upload = Upload(live.sitting.id, kind, seq, media_type, client_time, hall.now())
        return await _outcome(hall, live, upload, records.place_media(upload, size, appended))
    async with live.media_lock:
        seq = await records.next_snapshot_seq(live.sitting.id)
        upload = Upload(live.sitting.id, kind, seq, media_type, None, hall.now())
        return await _outcome(hall, live, upload, records.place_media(upload, size, appended))


async def _store(
    hall: Hall, live: LiveSitting, upload: Upload, data: bytes
) -> MediaRecord | Refusal:
    return await _outcome(hall, live, upload, _records(hall).store_media(upload, data))


async def _outcome(
    hall: Hall, live: LiveSitting, upload: Upload, storing: Awaitable[Stored]
) -> MediaRecord | Refusal:
    """What became of an upload once stored: its record, noting anything odd, or a refusal."""
    kind, seq = upload.kind, upload.seq
    try:
        stored = await storing
    except StoreError as error:
        return Refusal(
            503, "not_stored", f"{kind.value} {seq} was not stored ({error}); send it again"
        )
    if stored.arrival is Arrival.CONFLICT:
        await hall.note(
            live,
            Finding("media-duplicate", f"{kind.value} {seq} sent again with other bytes", 2),
            "server",
        )
        return Refusal(409, "duplicate_chunk", f"{kind.value} {seq} is stored with other bytes")
    if stored.arrival is Arrival.GAP:
        await hall.note(
            live,
            Finding("media-gap", f"{kind.value} {seq} arrived; earlier ones are missing", 2),
            "server",
        )
    elif stored.arrival is Arrival.LATE:
        await hall.note(
            live, Finding("media-out-of-order", f"{kind.value} {seq} arrived late", 1), "server"
        )
    await hall.media_arrived(live, snapshot=kind is Kind.SNAPSHOT)
    return stored.record


def _records(hall: Hall) -> ProctoringRecords:
    records = hall.records
    assert records is not None
    return records
