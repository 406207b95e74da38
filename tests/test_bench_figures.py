"""The bench's figures over the window: a slow tenth shows where it was (bench/run.py)."""

from __future__ import annotations

from bench.run import by_tenth


def test_a_slow_first_tenth_shows_first_for_every_worker_together() -> None:
    fast, slow = [5.0] * 90, [500.0] * 10
    first_worker = {"latencies_ms": slow + fast}
    second_worker = {"latencies_ms": [400.0] * 20 + [6.0] * 180}
    tenths = by_tenth([first_worker, second_worker], "latencies_ms", 99)
    assert len(tenths) == 10
    assert tenths[0] is not None and tenths[0] >= 400
    assert all(value is not None and value <= 6.0 for value in tenths[1:])


def test_a_worker_with_nothing_leaves_no_gap() -> None:
    tenths = by_tenth(
        [{"latencies_ms": []}, {"latencies_ms": [float(n) for n in range(100)]}], "latencies_ms", 50
    )
    assert tenths == [4.5, 14.5, 24.5, 34.5, 44.5, 54.5, 64.5, 74.5, 84.5, 94.5]
