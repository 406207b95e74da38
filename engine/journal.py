"""The tamper-evident event log, as pure functions over bytes.

Every event of every sitting is one leaf. Its body is canonical msgpack of (seq, sitting, kind, at,
data); the leaf hash is H(0x00 ‖ body) and the chain hash H(0x01 ‖ previous chain ‖ leaf), the
RFC 6962 domain separation applied as a hash chain so that appending costs one hash. The head
(last seq and its chain hash) is also written outside the database, so a log cut short or rewritten
after the fact no longer matches it. `verify` walks the log and names the first event that was
changed, removed or reordered; `merkle_root` gives the RFC 6962 tree head for a signed checkpoint.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import msgpack

from engine.exceptions import JournalError

GENESIS = bytes(32)
HEAD_FILE = "journal.head"


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored event: its columns and the hashes that bind it in place."""

    seq: int
    sitting_id: str
    kind: str
    at: float
    body: bytes
    leaf: bytes
    chain: bytes


@dataclass(frozen=True, slots=True)
class Head:
    """The last event's number and chain hash: what the log must still reach."""

    seq: int
    chain: bytes


def encode_body(seq: int, sitting_id: str, kind: str, at: float, data: Mapping[str, Any]) -> bytes:
    """Canonical bytes of an event: fixed field order, sorted data keys."""
    canonical = [seq, sitting_id, kind, at, {key: data[key] for key in sorted(data)}]
    return cast(bytes, msgpack.packb(canonical, use_bin_type=True))


def decode_body(body: bytes) -> tuple[int, str, str, float, dict[str, Any]]:
    seq, sitting_id, kind, at, data = msgpack.unpackb(body, raw=False)
    return seq, sitting_id, kind, at, data


def leaf_hash(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def make_entry(
    previous_chain: bytes, seq: int, sitting_id: str, kind: str, at: float, data: Mapping[str, Any]
) -> Entry:
    """The entry that appends this event after `previous_chain`."""
    body = encode_body(seq, sitting_id, kind, at, data)
    leaf, chain = link(previous_chain, body)
    return Entry(seq, sitting_id, kind, at, body, leaf, chain)


def link(previous_chain: bytes, body: bytes) -> tuple[bytes, bytes]:
    """(leaf hash, chain hash) of `body` appended after `previous_chain`: `make_entry`'s hashes
    without the `Entry`, for the store's writer, which needs only the columns."""
    leaf = leaf_hash(body)
    return leaf, node_hash(previous_chain, leaf)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """RFC 6962 Merkle tree head over leaf hashes (empty tree: hash of nothing)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


@dataclass(frozen=True, slots=True)
class Report:
    """What a clean verification saw."""

    events: int
    head: Head
    root: bytes
    sittings: int


def verify(entries: Iterable[Entry], anchor: Head | None) -> Report:
    """Check every entry in seq order; raise `JournalError` at the first one out of place."""
    previous_chain = GENESIS
    expected_seq = 1
    leaves: list[bytes] = []
    per_sitting_seen: set[str] = set()
    anchored = anchor is None or anchor.seq == 0
    for entry in entries:
        if entry.seq != expected_seq:
            if entry.seq > expected_seq:
                raise JournalError(
                    f"missing: the log jumps from {expected_seq - 1} to {entry.seq}", expected_seq
                )
            raise JournalError("out of order: number repeats or goes back", entry.seq)
        try:
            seq, sitting_id, kind, at, _ = decode_body(entry.body)
        except Exception:
            raise JournalError("body is not a readable event", entry.seq) from None
        if (seq, sitting_id, kind, at) != (entry.seq, entry.sitting_id, entry.kind, entry.at):
            raise JournalError(
                "changed: columns differ from the hashed body (or reordered)", entry.seq
            )
        leaf = leaf_hash(entry.body)
        if leaf != entry.leaf:
            raise JournalError("changed: body does not match its leaf hash", entry.seq)
        chain = node_hash(previous_chain, leaf)
        if chain != entry.chain:
            raise JournalError(
                "changed or reordered: chain hash does not follow from the event before",
                entry.seq,
            )
        if anchor is not None and entry.seq == anchor.seq:
            if chain != anchor.chain:
                raise JournalError("rewritten: chain differs from the recorded head", entry.seq)
            anchored = True
        previous_chain = chain
        leaves.append(leaf)
        per_sitting_seen.add(entry.sitting_id)
        expected_seq += 1
    if not anchored:
        assert anchor is not None
        raise JournalError(
            f"removed: the recorded head is event {anchor.seq} but the log ends at "
            f"{expected_seq - 1}",
            expected_seq,
        )
    return Report(
        events=expected_seq - 1,
        head=Head(expected_seq - 1, previous_chain),
        root=merkle_root(leaves),
        sittings=len(per_sitting_seen),
    )


def write_head(data_dir: Path, head: Head) -> None:
    """Replace the head file atomically; it may lag the database, never lead it."""
    target = data_dir / HEAD_FILE
    temporary = target.with_suffix(".tmp")
    temporary.write_text(f"{head.seq} {head.chain.hex()}\n", encoding="ascii")
    os.replace(temporary, target)


def read_head(data_dir: Path) -> Head | None:
    target = data_dir / HEAD_FILE
    if not target.exists():
        return None
    try:
        seq_text, chain_hex = target.read_text(encoding="ascii").split()
        return Head(int(seq_text), bytes.fromhex(chain_hex))
    except ValueError:
        raise JournalError(f"{target} is not a journal head") from None
