"""Ed25519 seals: the data directory's signing key, sealed statements and sealed files.

A seal says "this data directory's key vouches for these exact bytes": a candidate's
acknowledgement of a result, a member's countersignature, a results sheet. Anyone holding the
file can check it offline with `examhall results verify`; the key's id (a hash of the public
key) is printed on every document so it can be compared with the one the service publishes.

The signed message is ``MAGIC ‖ canonical JSON of (algorithm, key id, purpose, sha256, meta)``,
so a seal cannot be moved to other bytes, another purpose or other metadata.

Files: printable HTML carries its seal in a last line ``<!--examhall-seal {...}-->`` over every
byte before that line; any other file (CSV) gets a detached ``FILE.seal`` beside it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from engine.exceptions import SignatureError

FORMAT = "examhall-seal-1"
ALGORITHM = "ed25519"
KEY_FILE = "signing-key.pem"
PUBLIC_KEY_FILE = "signing-key.pub"
HTML_SEAL_PREFIX = b"<!--examhall-seal "
HTML_SEAL_SUFFIX = b"-->"
DETACHED_SUFFIX = ".seal"
_MAGIC = FORMAT.encode() + b"\x00"


def canonical_json(value: Any) -> bytes:
    """One byte string per value: sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def key_id(public_key: bytes) -> str:
    """A short, printable name of a public key: 16 hex digits of its SHA-256."""
    return hashlib.sha256(public_key).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Seal:
    """A detached Ed25519 signature over some bytes, with what it was for."""

    key: bytes
    purpose: str
    sha256: str
    signature: bytes
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key_id(self) -> str:
        return key_id(self.key)

    def message(self) -> bytes:
        signed = {
            "algorithm": ALGORITHM,
            "key_id": self.key_id,
            "purpose": self.purpose,
            "sha256": self.sha256,
            "meta": dict(self.meta),
        }
        return _MAGIC + canonical_json(signed)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "algorithm": ALGORITHM,
            "key": _b64(self.key),
            "key_id": self.key_id,
            "purpose": self.purpose,
            "sha256": self.sha256,
            "meta": dict(self.meta),
            "signature": _b64(self.signature),
        }

    @classmethod
    def from_json(cls, raw: object) -> Seal:
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise SignatureError(f"not an {FORMAT} seal")
        if raw.get("algorithm") != ALGORITHM:
            raise SignatureError(f"unsupported algorithm {raw.get('algorithm')!r}")
        try:
            key, signature = _unb64(raw["key"]), _unb64(raw["signature"])
            purpose, digest, meta = raw["purpose"], raw["sha256"], raw.get("meta", {})
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            raise SignatureError(f"malformed seal: {error}") from None
        if (
            not isinstance(purpose, str)
            or not isinstance(digest, str)
            or not isinstance(meta, dict)
        ):
            raise SignatureError("malformed seal: purpose, sha256 or meta has the wrong type")
        seal = cls(key, purpose, digest, signature, meta)
        if raw.get("key_id") != seal.key_id:
            raise SignatureError("malformed seal: key_id does not belong to its key")
        return seal


@dataclass(frozen=True, slots=True)
class Signer:
    """The data directory's private key."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    def seal(self, payload: bytes, purpose: str, meta: Mapping[str, Any] | None = None) -> Seal:
        unsigned = Seal(
            self.public_key, purpose, hashlib.sha256(payload).hexdigest(), b"", dict(meta or {})
        )
        return Seal(
            unsigned.key,
            purpose,
            unsigned.sha256,
            self.private_key.sign(unsigned.message()),
            unsigned.meta,
        )


_SIGNERS: dict[tuple[Path, int], Signer] = {}
"""Loaded keys by (file, modification time): one read per key, not one per signature."""


def signer_for(data_dir: Path) -> Signer:
    """The data directory's signing key, created (readable by the owner only) on first use."""
    path = (data_dir / KEY_FILE).resolve()
    if path.exists():
        cached = _SIGNERS.get((path, path.stat().st_mtime_ns))
        if cached is not None:
            return cached
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as error:
        raise SignatureError(f"{path} is not a usable signing key: {error}") from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise SignatureError(f"{path} holds a key that is not Ed25519")
    signer = _SIGNERS[(path, path.stat().st_mtime_ns)] = Signer(loaded)
    public = data_dir / PUBLIC_KEY_FILE
    if not public.exists():
        public.write_text(f"{ALGORITHM} {_b64(signer.public_key)} {signer.key_id}\n", "ascii")
    return signer


def public_key_of(data_dir: Path) -> bytes:
    """The data directory's public key, read without creating anything."""
    path = data_dir / KEY_FILE
    if not path.exists():
        raise SignatureError(f"{data_dir} has no signing key yet (nothing was sealed there)")
    return signer_for(data_dir).public_key


def check(seal: Seal, payload: bytes, *, expected_key: bytes | None = None) -> None:
    """Raise `SignatureError` unless `seal` is a valid seal of `payload` (by `expected_key`)."""
    if expected_key is not None and seal.key != expected_key:
        raise SignatureError(
            f"sealed by key {seal.key_id}, not by the expected key {key_id(expected_key)}"
        )
    if hashlib.sha256(payload).hexdigest() != seal.sha256:
        raise SignatureError("the content was changed after it was sealed (hash differs)")
    try:
        Ed25519PublicKey.from_public_bytes(seal.key).verify(seal.signature, seal.message())
    except (InvalidSignature, ValueError):
        raise SignatureError("the signature does not verify") from None


# --- files ------------------------------------------------------------------------------------


def seal_html(html: bytes, signer: Signer, meta: Mapping[str, Any]) -> bytes:
    """`html` followed by its seal as a final comment line."""
    if not html.endswith(b"\n"):
        html += b"\n"
    seal = signer.seal(html, "document", meta)
    trailer = json.dumps(seal.to_json(), sort_keys=True, ensure_ascii=True).encode()
    return html + HTML_SEAL_PREFIX + trailer + HTML_SEAL_SUFFIX + b"\n"


def write_detached(path: Path, signer: Signer, meta: Mapping[str, Any]) -> Path:
    """Seal the file at `path` into ``path.seal``; returns the seal's path."""
    seal = signer.seal(path.read_bytes(), "document", meta)
    target = path.with_name(path.name + DETACHED_SUFFIX)
    target.write_text(json.dumps(seal.to_json(), indent=2, sort_keys=True) + "\n", "ascii")
    return target


@dataclass(frozen=True, slots=True)
class VerifiedFile:
    path: Path
    seal: Seal
    embedded: bool


def verify_file(path: Path, *, expected_key: bytes | None = None) -> VerifiedFile:
    """Check a sealed file: its embedded HTML seal, else its detached ``.seal``."""
    try:
        content = path.read_bytes()
    except OSError as error:
        raise SignatureError(f"cannot read {path}: {error.strerror}") from None
    payload, raw = _split_embedded(content)
    embedded = raw is not None
    if raw is None:
        detached = path.with_name(path.name + DETACHED_SUFFIX)
        if not detached.exists():
            raise SignatureError(f"{path} carries no seal and has no {detached.name} beside it")
        payload, raw = content, detached.read_bytes()
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise SignatureError(f"the seal of {path} is not JSON") from None
    seal = Seal.from_json(parsed)
    check(seal, payload, expected_key=expected_key)
    return VerifiedFile(path, seal, embedded)


def _split_embedded(content: bytes) -> tuple[bytes, bytes | None]:
    body = content[:-1] if content.endswith(b"\n") else content
    start = body.rfind(b"\n" + HTML_SEAL_PREFIX)
    if start < 0 or not body.endswith(HTML_SEAL_SUFFIX):
        return content, None
    return content[: start + 1], body[start + 1 + len(HTML_SEAL_PREFIX) : -len(HTML_SEAL_SUFFIX)]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("expected base64 text")
    return base64.b64decode(text, validate=True)
