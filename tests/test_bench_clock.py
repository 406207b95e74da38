"""The bench's sittings measure the clock as a client shows it, and each clock frame's delay,
apart for the frames that arrived while the workers prepared (bench/load.py)."""

from __future__ import annotations

import time

import pytest

from bench.load import Sitting, Tally


def clock(remaining_s: float, deadline: float, sent_at: float) -> dict[str, object]:
    return {
        "t": "clock",
        "state": "running",
        "remaining_ms": int(remaining_s * 1000),
        "deadline": deadline,
        "server_time": sent_at,
    }


def test_a_late_clock_does_not_raise_the_error_and_its_delay_is_kept_by_phase() -> None:
    tally = Tally()
    sitting = Sitting("http://127.0.0.1:1", "CODE", "part", "kk", tally)
    now = time.time()
    deadline = now + 600
    sitting._take_clock(clock(600, deadline, sent_at=now))
    error_ms = sitting.clock_error_ms()
    assert error_ms is not None and abs(error_ms) < 50

    tally.go_at = time.time()
    # A frame sent 0.8 s ago arrives now: shown as it says, it would be 800 ms too much.
    sent_at = time.time() - 0.8
    sitting._take_clock(clock(deadline - sent_at, deadline, sent_at=sent_at))
    error_ms = sitting.clock_error_ms()
    assert error_ms is not None and abs(error_ms) < 50

    assert len(tally.prep_clock_delays_ms) == 1 and tally.prep_clock_delays_ms[0] < 50
    assert tally.clock_delays_ms == [pytest.approx(800, abs=50)]


def test_no_error_is_sampled_before_a_running_clock() -> None:
    sitting = Sitting("http://127.0.0.1:1", "CODE", "part", "kk", Tally())
    assert sitting.clock_error_ms() is None
    paused = {"t": "clock", "state": "paused", "remaining_ms": 1000, "deadline": None}
    sitting._take_clock(paused | {"server_time": time.time()})
    assert sitting.clock_error_ms() is None
