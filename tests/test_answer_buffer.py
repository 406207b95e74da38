"""Answers held back between the journal and the answers table (store/answer_buffer.py)."""

from __future__ import annotations

from engine.store.answer_buffer import AnswerBuffer, Row


def row(sitting: str, seq: int, journal_seq: int) -> Row:
    return (sitting, seq, f"item-{seq}", 1, 0, 10.0, journal_seq)


def test_a_generation_is_written_in_sitting_order_once_it_is_old_enough() -> None:
    buffer = AnswerBuffer(lag_s=1.0, slice_min=2)
    for journal_seq, (sitting, seq) in enumerate([("b", 1), ("a", 1), ("b", 2), ("a", 2)], 1):
        buffer.add(row(sitting, seq, journal_seq), now=100.0)
    assert buffer.next_slice(added=1, now=100.5) == [], "younger than lag_s: kept"
    first = buffer.next_slice(added=1, now=101.0)
    second = buffer.next_slice(added=1, now=101.0)
    assert [r[:2] for r in first + second] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    assert first and second and not buffer


def test_what_is_written_so_far_sets_the_mark_for_replay() -> None:
    buffer = AnswerBuffer(lag_s=0.0, slice_min=1)
    buffer.add(row("b", 1, 7), now=0.0)
    buffer.add(row("a", 1, 8), now=0.0)
    assert buffer.indexed_to(head_seq=8) == 6
    assert buffer.next_slice(added=0, now=1.0) == [row("a", 1, 8)]
    assert buffer.indexed_to(head_seq=8) == 6, "b's row (journal seq 7) is still held"
    buffer.add(row("a", 2, 9), now=1.0)
    assert buffer.next_slice(added=0, now=1.0) == [row("b", 1, 7)]
    assert buffer.indexed_to(head_seq=9) == 8, "only the newer generation is left"
    assert buffer.take_all() == [row("a", 2, 9)]
    assert buffer.indexed_to(head_seq=9) == 9


def test_restore_undoes_adds_takes_and_seqs_since_the_mark() -> None:
    buffer = AnswerBuffer(lag_s=0.0, slice_min=1)
    buffer.add(row("a", 1, 1), now=0.0)
    buffer.note_highest("a", 1)
    mark = buffer.mark()
    buffer.add(row("b", 1, 2), now=0.0)
    buffer.note_highest("b", 1)
    assert len(buffer.take_all()) == 2
    buffer.add(row("a", 2, 3), now=0.0)
    buffer.note_highest("a", 2)
    buffer.restore(mark)
    assert (buffer.highest("a"), buffer.highest("b")) == (1, None)
    assert buffer.take_all() == [row("a", 1, 1)]
