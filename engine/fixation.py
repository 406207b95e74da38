"""Audio-video fixation (KZ-2): what a media chunk or camera still must be, and how to check files.

Pure functions: the server's media handlers and `examhall fixation verify` both use them. A chunk
is a piece of the browser's MediaRecorder stream; only the first chunk of a stream carries the
container header, so only it can be checked for the right bytes.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAX_CHUNK_BYTES = 4 * 1024 * 1024
MAX_SNAPSHOT_BYTES = 512 * 1024

CHUNK_TYPES: dict[str, tuple[str, ...]] = {
    "video/webm": ("webm", "\x1a\x45\xdf\xa3"),
    "audio/webm": ("webm", "\x1a\x45\xdf\xa3"),
    "video/mp4": ("mp4", ""),
    "audio/mp4": ("mp4", ""),
    "audio/ogg": ("ogg", "OggS"),
}
"""Allowed chunk types: file extension and the first chunk's magic bytes (latin-1)."""

SNAPSHOT_TYPES: dict[str, tuple[str, bytes]] = {
    "image/jpeg": ("jpg", b"\xff\xd8\xff"),
    "image/png": ("png", b"\x89PNG\r\n\x1a\n"),
    "image/webp": ("webp", b"RIFF"),
}


class Kind(enum.StrEnum):
    CHUNK = "chunk"
    SNAPSHOT = "snapshot"


def base_type(content_type: str) -> str:
    """``video/webm;codecs=vp8,opus`` → ``video/webm``."""
    return content_type.split(";", 1)[0].strip().lower()


def chunk_problem(media_type: str, data: bytes, *, first: bool) -> str | None:
    """Why these bytes are not an acceptable chunk, or None."""
    if len(data) == 0:
        return "the chunk is empty"
    if len(data) > MAX_CHUNK_BYTES:
        return f"the chunk is {len(data)} bytes; at most {MAX_CHUNK_BYTES} are taken"
    kind = CHUNK_TYPES.get(base_type(media_type))
    if kind is None:
        return f"media type {media_type!r} is not taken ({', '.join(sorted(CHUNK_TYPES))})"
    if first:
        extension, magic = kind
        if extension == "mp4" and data[4:8] != b"ftyp":
            return "the first chunk of an MP4 stream must start with an ftyp box"
        if magic and not data.startswith(magic.encode("latin-1")):
            return f"the first chunk is not a {base_type(media_type)} stream"
    return None


def snapshot_problem(media_type: str, data: bytes) -> str | None:
    if len(data) > MAX_SNAPSHOT_BYTES:
        return f"the snapshot is {len(data)} bytes; at most {MAX_SNAPSHOT_BYTES} are taken"
    kind = SNAPSHOT_TYPES.get(base_type(media_type))
    if kind is None:
        return f"media type {media_type!r} is not an image type taken here"
    _, magic = kind
    if not data.startswith(magic) or (
        base_type(media_type) == "image/webp" and data[8:12] != b"WEBP"
    ):
        return f"the bytes are not a {base_type(media_type)} image"
    return None


def extension_for(kind: Kind, media_type: str) -> str:
    table = CHUNK_TYPES if kind is Kind.CHUNK else SNAPSHOT_TYPES
    return table[base_type(media_type)][0]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True, slots=True)
class MediaRecord:
    """One stored chunk or still, as the log holds it."""

    sitting_id: str
    kind: Kind
    seq: int
    media_type: str
    size: int
    sha256: str
    client_time: float | None
    server_time: float
    path: str
    """Relative to the data directory."""
    purged: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "kind": self.kind.value,
            "media_type": self.media_type,
            "size": self.size,
            "sha256": self.sha256,
            "client_time": self.client_time,
            "server_time": self.server_time,
            "purged": self.purged,
        }


@dataclass(frozen=True, slots=True)
class Upload:
    """What is known of a chunk or still before its bytes are hashed and stored."""

    sitting_id: str
    kind: Kind
    seq: int
    media_type: str
    client_time: float | None
    server_time: float
    path: str
    """Relative to the data directory."""

    def record(self, size: int, sha256: str) -> MediaRecord:
        return MediaRecord(
            self.sitting_id,
            self.kind,
            self.seq,
            self.media_type,
            size,
            sha256,
            self.client_time,
            self.server_time,
            self.path,
        )


class Arrival(enum.StrEnum):
    """How a chunk's number relates to what is stored already."""

    NEXT = "next"
    GAP = "gap"
    """It skips numbers: stored, and the gap recorded as an irregularity."""
    LATE = "late"
    """It fills an earlier gap: stored, recorded as out of order."""
    REPEAT = "repeat"
    """The same bytes again: acknowledged, nothing stored."""
    CONFLICT = "conflict"
    """The same number with other bytes: refused."""


def classify(seq: int, sha256: str, same_seq_sha256: str | None, highest: int) -> Arrival:
    """Place chunk `seq` given what is stored: the hash under the same number, if any, and the
    highest number so far (0 for none). Two indexed lookups, whatever the sitting's length."""
    if same_seq_sha256 is not None:
        return Arrival.REPEAT if same_seq_sha256 == sha256 else Arrival.CONFLICT
    if seq == highest + 1:
        return Arrival.NEXT
    return Arrival.GAP if seq > highest else Arrival.LATE


@dataclass(frozen=True, slots=True)
class FileProblem:
    record: MediaRecord
    reason: str

    def __str__(self) -> str:
        record = self.record
        return f"{record.sitting_id} {record.kind} {record.seq} ({record.path}): {self.reason}"


def verify_files(data_dir: Path, records: Iterable[MediaRecord]) -> list[FileProblem]:
    """Every recorded file must exist with its recorded size and SHA-256 (unless purged)."""
    problems = []
    for record in records:
        if record.purged:
            continue
        path = data_dir / record.path
        if not path.is_file():
            problems.append(FileProblem(record, "the file is missing"))
            continue
        data = path.read_bytes()
        if len(data) != record.size:
            problems.append(
                FileProblem(record, f"size is {len(data)} bytes, the log says {record.size}")
            )
        elif sha256_hex(data) != record.sha256:
            problems.append(
                FileProblem(record, "SHA-256 differs from the log: the file was changed")
            )
    return problems
