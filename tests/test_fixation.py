"""The pure fixation rules: media bytes, arrival order, file checks."""

from __future__ import annotations

from pathlib import Path

from engine.fixation import (
    Arrival,
    Kind,
    MediaRecord,
    chunk_problem,
    classify,
    sha256_hex,
    snapshot_problem,
    verify_files,
)


def test_only_the_first_chunk_must_carry_the_stream_header() -> None:
    assert chunk_problem("video/webm;codecs=vp8,opus", b"\x1a\x45\xdf\xa3abc", first=True) is None
    assert chunk_problem("video/webm", b"abc", first=True) == (
        "the first chunk is not a video/webm stream"
    )
    assert chunk_problem("video/webm", b"abc", first=False) is None
    assert chunk_problem("video/mp4", b"\x00\x00\x00\x18ftypisom", first=True) is None
    assert "ftyp" in str(chunk_problem("video/mp4", b"\x00" * 12, first=True))
    assert "not taken" in str(chunk_problem("application/zip", b"PK", first=False))
    assert chunk_problem("video/webm", b"", first=False) == "the chunk is empty"


def test_snapshots_must_be_the_image_they_claim() -> None:
    assert snapshot_problem("image/jpeg", b"\xff\xd8\xff\xe0rest") is None
    assert snapshot_problem("image/png", b"\x89PNG\r\n\x1a\nrest") is None
    assert snapshot_problem("image/webp", b"RIFF\x00\x00\x00\x00WEBPVP8 ") is None
    assert snapshot_problem("image/webp", b"RIFF\x00\x00\x00\x00WAVE") is not None
    assert snapshot_problem("image/jpeg", b"\x89PNG") == "the bytes are not a image/jpeg image"


def test_arrivals_are_classified_against_what_is_stored() -> None:
    def place(seq: int, sha256: str, stored: dict[int, str]) -> Arrival:
        return classify(seq, sha256, stored.get(seq), max(stored, default=0))

    stored = {1: "a", 2: "b"}
    assert place(3, "c", stored) is Arrival.NEXT
    assert place(6, "c", stored) is Arrival.GAP
    assert place(2, "b", stored) is Arrival.REPEAT
    assert place(2, "x", stored) is Arrival.CONFLICT
    assert place(1, "a", {}) is Arrival.NEXT
    assert place(4, "d", {1: "a", 5: "e"}) is Arrival.LATE


def test_verify_files_names_changed_missing_and_resized_files(tmp_path: Path) -> None:
    def record(name: str, data: bytes, *, purged: bool = False) -> MediaRecord:
        (tmp_path / name).write_bytes(data)
        return MediaRecord(
            "s",
            Kind.CHUNK,
            len(name),
            "video/webm",
            len(data),
            sha256_hex(data),
            None,
            1.0,
            name,
            purged,
        )

    good = record("a.webm", b"aaaa")
    changed = record("bb.webm", b"bbbb")
    (tmp_path / "bb.webm").write_bytes(b"bbbc")
    resized = record("ccc.webm", b"cccc")
    (tmp_path / "ccc.webm").write_bytes(b"cc")
    missing = record("dddd.webm", b"dddd")
    (tmp_path / "dddd.webm").unlink()
    purged = record("eeeee.webm", b"eeee", purged=True)
    (tmp_path / "eeeee.webm").unlink()
    problems = verify_files(tmp_path, [good, changed, resized, missing, purged])
    assert [(p.record.path, p.reason.split(":")[0].split(" is ")[0]) for p in problems] == [
        ("bb.webm", "SHA-256 differs from the log"),
        ("ccc.webm", "size"),
        ("dddd.webm", "the file"),
    ]
