"""The tamper-evident log: intact logs verify, every kind of tampering is named."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pytest

from engine import journal
from engine.exceptions import JournalError


def build(count: int) -> list[journal.Entry]:
    entries, chain = [], journal.GENESIS
    for seq in range(1, count + 1):
        entry = journal.make_entry(chain, seq, f"s{seq % 3}", "answer", 1000.0 + seq, {"seq": seq})
        entries.append(entry)
        chain = entry.chain
    return entries


def head_of(entries: list[journal.Entry]) -> journal.Head:
    return journal.Head(entries[-1].seq, entries[-1].chain)


def test_an_intact_log_verifies_and_reports_its_head_and_root() -> None:
    entries = build(10)
    report = journal.verify(entries, head_of(entries))
    assert report.events == 10 and report.sittings == 3
    assert report.head == head_of(entries)
    assert report.root == journal.merkle_root([e.leaf for e in entries])


def test_a_changed_body_is_named() -> None:
    entries = build(10)
    body = journal.encode_body(4, "s1", "answer", 1004.0, {"seq": 999})
    entries[3] = dataclasses.replace(entries[3], body=body)
    with pytest.raises(JournalError, match="event 4: changed") as failure:
        journal.verify(entries, head_of(entries))
    assert failure.value.seq == 4


def test_a_changed_column_is_named() -> None:
    entries = build(10)
    entries[6] = dataclasses.replace(entries[6], kind="submitted")
    with pytest.raises(JournalError, match="event 7: changed"):
        journal.verify(entries, head_of(entries))


def test_a_rehashed_change_breaks_the_chain_at_the_next_event() -> None:
    entries = build(10)
    body = journal.encode_body(5, "s2", "answer", 1005.0, {"seq": 0})
    entries[4] = dataclasses.replace(entries[4], body=body, leaf=journal.leaf_hash(body))
    with pytest.raises(JournalError, match="event 5: changed or reordered"):
        journal.verify(entries, head_of(entries))


def test_a_removed_event_is_named() -> None:
    entries = build(10)
    head = head_of(entries)
    del entries[5]
    with pytest.raises(JournalError, match="missing") as failure:
        journal.verify(entries, head)
    assert failure.value.seq == 6


def test_a_cut_off_tail_is_caught_by_the_head() -> None:
    entries = build(10)
    head = head_of(entries)
    with pytest.raises(JournalError, match="removed: the recorded head is event 10"):
        journal.verify(entries[:8], head)


def test_swapped_events_are_named() -> None:
    entries = build(10)
    a, b = entries[2], entries[3]
    entries[2] = dataclasses.replace(b, seq=3)
    entries[3] = dataclasses.replace(a, seq=4)
    with pytest.raises(JournalError, match="event 3"):
        journal.verify(entries, head_of(entries))


def test_a_fully_rewritten_log_does_not_match_the_head() -> None:
    original = build(5)
    forged, chain = [], journal.GENESIS
    for seq in range(1, 6):
        entry = journal.make_entry(chain, seq, "s0", "answer", 1.0, {"forged": True})
        forged.append(entry)
        chain = entry.chain
    with pytest.raises(JournalError, match="event 5: rewritten"):
        journal.verify(forged, head_of(original))


def test_merkle_root_follows_rfc_6962() -> None:
    leaves = [journal.leaf_hash(bytes([i])) for i in range(3)]
    left = journal.node_hash(leaves[0], leaves[1])
    assert journal.merkle_root(leaves) == journal.node_hash(left, leaves[2])
    assert journal.merkle_root([]) == hashlib.sha256(b"").digest()
    assert journal.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()


def test_head_file_round_trips(tmp_path: Path) -> None:
    head = journal.Head(42, bytes(range(32)))
    journal.write_head(tmp_path, head)
    assert journal.read_head(tmp_path) == head
    (tmp_path / journal.HEAD_FILE).write_text("garbage")
    with pytest.raises(JournalError, match="not a journal head"):
        journal.read_head(tmp_path)


def test_link_gives_the_leaf_and_chain_hashes_of_make_entry() -> None:
    previous = journal.make_entry(journal.GENESIS, 1, "e/c/p", "started", 1.0, {})
    entry = journal.make_entry(previous.chain, 2, "e/c/p", "answer", 2.0, {"seq": 1})
    assert journal.link(previous.chain, entry.body) == (entry.leaf, entry.chain)
    assert entry.leaf == journal.leaf_hash(entry.body)
    assert entry.chain == journal.node_hash(previous.chain, entry.leaf)
