"""Seals: the data directory's key, sealed statements, sealed HTML and detached CSV seals."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from engine import signatures
from engine.exceptions import SignatureError


def test_the_key_is_made_once_readable_by_the_owner_only(tmp_path: Path) -> None:
    first = signatures.signer_for(tmp_path)
    again = signatures.signer_for(tmp_path)
    assert first.public_key == again.public_key
    mode = stat.S_IMODE((tmp_path / signatures.KEY_FILE).stat().st_mode)
    assert mode == 0o600
    published = (tmp_path / signatures.PUBLIC_KEY_FILE).read_text().split()
    assert published[0] == "ed25519" and published[2] == first.key_id
    assert signatures.public_key_of(tmp_path) == first.public_key


def test_two_data_directories_have_different_keys(tmp_path: Path) -> None:
    a = signatures.signer_for(tmp_path / "a")
    b = signatures.signer_for(tmp_path / "b")
    assert a.public_key != b.public_key


def test_public_key_of_a_directory_that_never_sealed_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SignatureError, match="has no signing key yet"):
        signatures.public_key_of(tmp_path)
    assert not (tmp_path / signatures.KEY_FILE).exists(), "reading must not create a key"


def test_a_seal_binds_the_bytes_the_purpose_and_the_metadata(tmp_path: Path) -> None:
    signer = signatures.signer_for(tmp_path)
    seal = signer.seal(b"score 87", "result-signed-by-candidate", {"sitting": "e/c/p"})
    signatures.check(seal, b"score 87", expected_key=signer.public_key)
    with pytest.raises(SignatureError, match="hash differs"):
        signatures.check(seal, b"score 88")
    for forged in (
        signatures.Seal(seal.key, "document", seal.sha256, seal.signature, seal.meta),
        signatures.Seal(seal.key, seal.purpose, seal.sha256, seal.signature, {"sitting": "x"}),
    ):
        with pytest.raises(SignatureError, match="does not verify"):
            signatures.check(forged, b"score 87")
    other = signatures.signer_for(tmp_path / "other")
    with pytest.raises(SignatureError, match="not by the expected key"):
        signatures.check(seal, b"score 87", expected_key=other.public_key)


def test_a_seal_survives_json_and_refuses_a_swapped_key_id(tmp_path: Path) -> None:
    seal = signatures.signer_for(tmp_path).seal(b"x", "document")
    again = signatures.Seal.from_json(json.loads(json.dumps(seal.to_json())))
    signatures.check(again, b"x")
    doctored = {**seal.to_json(), "key_id": "0" * 16}
    with pytest.raises(SignatureError, match="key_id does not belong"):
        signatures.Seal.from_json(doctored)
    with pytest.raises(SignatureError, match="not an examhall-seal-1 seal"):
        signatures.Seal.from_json({"format": "pgp"})


def sealed_page(tmp_path: Path) -> Path:
    signer = signatures.signer_for(tmp_path / "data")
    page = "<!DOCTYPE html>\n<html><body><p>Шевченко: 87</p></body></html>\n".encode()
    path = tmp_path / "sheet.html"
    path.write_bytes(signatures.seal_html(page, signer, {"kind": "results-sheet"}))
    return path


def test_sealed_html_verifies_and_any_changed_byte_is_caught(tmp_path: Path) -> None:
    path = sealed_page(tmp_path)
    verified = signatures.verify_file(path)
    assert verified.embedded and verified.seal.meta == {"kind": "results-sheet"}
    content = path.read_bytes()
    position = content.index(b"87")
    path.write_bytes(content[:position] + b"97" + content[position + 2 :])
    with pytest.raises(SignatureError, match="changed after it was sealed"):
        signatures.verify_file(path)


def test_html_without_its_seal_line_is_unsealed(tmp_path: Path) -> None:
    path = sealed_page(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))
    with pytest.raises(SignatureError, match="carries no seal"):
        signatures.verify_file(path)


def test_a_detached_seal_covers_a_csv(tmp_path: Path) -> None:
    signer = signatures.signer_for(tmp_path / "data")
    path = tmp_path / "rating.csv"
    path.write_bytes("№,ПІБ,бал\r\n1,Бойко,154.44\r\n".encode())
    seal_path = signatures.write_detached(path, signer, {"kind": "rating-list"})
    assert seal_path.name == "rating.csv.seal"
    assert not signatures.verify_file(path).embedded
    path.write_bytes(path.read_bytes().replace(b"154.44", b"164.44"))
    with pytest.raises(SignatureError, match="changed after it was sealed"):
        signatures.verify_file(path)
    seal_path.unlink()
    with pytest.raises(SignatureError, match=r"no rating\.csv\.seal beside it"):
        signatures.verify_file(path)


def test_a_garbled_key_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / signatures.KEY_FILE).write_text("not a key")
    with pytest.raises(SignatureError, match="not a usable signing key"):
        signatures.signer_for(tmp_path)
