"""A sitting's recording as files one can play: for an appeal, a review, or a court.

Chunks are kept in segment files beside other sittings' (engine/store/file_child.py); this puts
one sitting's back together. Chunks are joined in their numbers' order into one file per
stream: a page that reloads starts a new recorder, whose first chunk carries the container's
header again, and a player reads only one header per file. Each chunk is checked against its
SHA-256 in the log as it is read; one that fails is left out and named, never passed off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine.fixation import (
    CHUNK_TYPES,
    Kind,
    MediaRecord,
    base_type,
    extension_for,
    sha256_hex,
    stored_bytes,
)


@dataclass(frozen=True, slots=True)
class Exported:
    files: list[Path]
    problems: list[str]
    """Chunks or stills left out, and why; empty when everything was written."""


def starts_a_stream(record: MediaRecord, data: bytes) -> bool:
    """The chunk begins with its container's header: a recorder started here."""
    magic = CHUNK_TYPES.get(base_type(record.media_type), ("", ""))[1].encode("latin-1")
    return bool(magic) and data.startswith(magic)


def export_recording(data_dir: Path, records: list[MediaRecord], out: Path) -> Exported:
    """Write `records`' chunks as ``recording-N.EXT`` (one per stream), their stills as
    ``snapshot-NNNNNN.EXT``, and ``manifest.json`` listing every piece with its times, size,
    hash, and where it went."""
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    manifest: list[dict[str, object]] = []
    files: list[Path] = []
    stream: Path | None = None
    streams = 0
    for record in sorted(records, key=lambda r: (r.kind.value, r.seq)):
        entry: dict[str, object] = record.to_json()
        manifest.append(entry)
        if record.purged:
            entry["exported_to"] = None
            continue
        try:
            data = stored_bytes(data_dir, record)
        except OSError as error:
            problems.append(f"{record.kind} {record.seq}: cannot be read ({error})")
            entry["exported_to"] = None
            continue
        if len(data) != record.size or sha256_hex(data) != record.sha256:
            problems.append(f"{record.kind} {record.seq}: differs from the log, left out")
            entry["exported_to"] = None
            continue
        extension = extension_for(record.kind, record.media_type)
        if record.kind is Kind.SNAPSHOT:
            target = out / f"snapshot-{record.seq:06d}.{extension}"
            target.write_bytes(data)
            files.append(target)
        else:
            if stream is None or starts_a_stream(record, data):
                streams += 1
                stream = out / f"recording-{streams}.{extension}"
                stream.write_bytes(b"")
                files.append(stream)
            entry["offset_in_file"] = stream.stat().st_size
            with stream.open("ab") as handle:
                handle.write(data)
            target = stream
        entry["exported_to"] = target.name
    manifest_path = out / "manifest.json"
    manifest_path.write_text(
        json.dumps({"pieces": manifest, "problems": problems}, ensure_ascii=False, indent=1),
        encoding="utf-8",
    )
    files.append(manifest_path)
    return Exported(files, problems)
