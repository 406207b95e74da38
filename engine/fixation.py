"""Audio-video fixation (KZ-2): what a media chunk or camera still must be, and how to check files.

Pure functions: the server's media handlers and `examhall fixation verify` both use them. A chunk
is a piece of the browser's MediaRecorder stream; only the first chunk of a stream carries the
container header, so only it can be checked for the right bytes.
"""

from __future__ import annotations

import enum
import hashlib
import os
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
    """The file holding its bytes, relative to the data directory."""
    purged: bool = False
    offset: int | None = None
    """Where its bytes start in the segment file at `path` (engine/store/file_child.py); None
    for an upload stored before segments, which is the whole file at `path`."""

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

    def record(self, size: int, sha256: str, path: str, offset: int) -> MediaRecord:
        return MediaRecord(
            self.sitting_id,
            self.kind,
            self.seq,
            self.media_type,
            size,
            sha256,
            self.client_time,
            self.server_time,
            path,
            offset=offset,
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


def stored_bytes(data_dir: Path, record: MediaRecord) -> bytes:
    """The bytes stored for `record` as they are on disk now (fewer than its size if the file
    was cut short). `FileNotFoundError` if its file is gone."""
    path = data_dir / record.path
    if record.offset is None:
        return path.read_bytes()
    with path.open("rb") as segment:
        return os.pread(segment.fileno(), record.size, record.offset)


def verify_files(data_dir: Path, records: Iterable[MediaRecord]) -> list[FileProblem]:
    """Every record's bytes must be on disk with its recorded size and SHA-256 (unless purged)."""
    problems = []
    for record in records:
        if record.purged:
            continue
        try:
            data = stored_bytes(data_dir, record)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            problems.append(FileProblem(record, "the file is missing"))
            continue
        if len(data) != record.size:
            problems.append(
                FileProblem(record, f"size is {len(data)} bytes, the log says {record.size}")
            )
        elif sha256_hex(data) != record.sha256:
            problems.append(
                FileProblem(record, "SHA-256 differs from the log: the file was changed")
            )
    return problems


@dataclass(frozen=True, slots=True)
class MediaFolder:
    """What the media folder holds beyond the records."""

    strays: list[str]
    """Files (relative paths) no record accounts for: put there, or left, by something else."""
    unrecorded_bytes: int
    """Bytes in segments no record points at: uploads sent again or refused after they were
    written, or written before a stop kept them from their commit (never acknowledged)."""
    segments_with_unrecorded: int


def check_media_folder(
    data_dir: Path, segments: str, records: Iterable[MediaRecord]
) -> MediaFolder:
    """Account for every file under ``DATA/media`` by the records; `segments` is the segment
    folder, relative to `data_dir`."""
    recorded_in: dict[str, int] = {}
    known: set[str] = set()
    for record in records:
        known.add(record.path)
        if record.offset is not None:
            recorded_in[record.path] = recorded_in.get(record.path, 0) + record.size
    strays: list[str] = []
    unrecorded = with_unrecorded = 0
    media_root = data_dir / "media"
    for path in sorted(media_root.rglob("*")) if media_root.is_dir() else []:
        if not path.is_file() or path.name.startswith("."):
            continue
        relative = path.relative_to(data_dir).as_posix()
        if path.parent == data_dir / segments and path.suffix == ".seg":
            extra = path.stat().st_size - recorded_in.get(relative, 0)
            if extra > 0:
                unrecorded += extra
                with_unrecorded += 1
        elif relative not in known:
            strays.append(relative)
    return MediaFolder(strays, unrecorded, with_unrecorded)
