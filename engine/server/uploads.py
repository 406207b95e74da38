"""Taking one media upload, whichever way it came: over HTTP (engine/server/media.py) or the
media socket (engine/server/media_socket.py).

A chunk is appended to a segment file and synced (engine/store/file_child.py), then recorded
(size, media type, SHA-256, client and server time, segment and offset) in one store job that
also journals it; only then is it acknowledged. Anything wrong is refused with a code, and the
refusal is itself recorded as an irregularity for the proctor — nothing is dropped silently.
"""

from __future__ import annotations

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
from engine.store.proctoring import ProctoringRecords


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
    if (bad_seq := seq_refusal(seq)) is not None:
        return bad_seq
    if data is None or len(data) > MAX_CHUNK_BYTES:
        await hall.note(
            live,
            Finding("media-oversized", f"chunk {seq} over {MAX_CHUNK_BYTES} bytes", 2),
            "server",
        )
        return Refusal(413, "chunk_too_large", f"a chunk may have at most {MAX_CHUNK_BYTES} bytes")
    problem = chunk_problem(media_type, data, first=seq == 1)
    if problem is not None:
        await hall.note(live, Finding("media-bad", f"chunk {seq}: {problem}", 2), "server")
        return Refusal(415, "bad_media", problem)
    return await _store(hall, live, Kind.CHUNK, seq, media_type, data, client_time)


async def take_snapshot(
    hall: Hall, live: LiveSitting, media_type: str, data: bytes | None
) -> MediaRecord | Refusal:
    """Check, number and store a camera still; `data` None means it was too large to read."""
    if (closed := refusal_if_closed(live)) is not None:
        return closed
    if data is None or len(data) > MAX_SNAPSHOT_BYTES:
        return Refusal(
            413, "snapshot_too_large", f"a still may have at most {MAX_SNAPSHOT_BYTES} bytes"
        )
    problem = snapshot_problem(media_type, data)
    if problem is not None:
        await hall.note(live, Finding("media-bad", f"camera still: {problem}", 1), "server")
        return Refusal(415, "bad_media", problem)
    async with live.media_lock:
        seq = await _records(hall).next_snapshot_seq(live.sitting.id)
        return await _store(hall, live, Kind.SNAPSHOT, seq, media_type, data, None)


async def _store(
    hall: Hall,
    live: LiveSitting,
    kind: Kind,
    seq: int,
    media_type: str,
    data: bytes,
    client_time: float | None,
) -> MediaRecord | Refusal:
    upload = Upload(live.sitting.id, kind, seq, media_type, client_time, hall.now())
    try:
        stored = await _records(hall).store_media(upload, data)
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
