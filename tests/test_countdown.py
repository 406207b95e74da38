"""The remaining time a client shows: late figures do not raise it, a moved deadline does."""

from __future__ import annotations

import pytest

from engine.countdown import KEEP_S, Countdown

DEADLINE = 1_800_000_000.0


def running(remaining_s: float, at: float, deadline: float = DEADLINE) -> Countdown:
    countdown = Countdown()
    assert countdown.update(int(remaining_s * 1000), "running", deadline, now=at)
    return countdown


def test_it_counts_down_from_the_figure_s_arrival() -> None:
    countdown = running(600, at=100.0)
    assert countdown.shown_s(now=130.0) == pytest.approx(570)
    assert countdown.shown_s(now=100.0 + 601) == 0.0


def test_a_clock_that_arrived_late_does_not_raise_what_is_shown() -> None:
    countdown = running(600, at=100.0)
    # 15 s on, a clock sent at 115.0 arrives 0.8 s late: taken, it would show 0.8 s too much.
    assert not countdown.update(585_000, "running", DEADLINE, now=115.8)
    assert countdown.shown_s(now=115.8) == pytest.approx(584.2)


def test_a_clock_that_arrived_sooner_than_the_kept_one_replaces_it() -> None:
    countdown = running(600, at=100.5)  # this one was 0.5 s on its way
    assert countdown.update(585_000, "running", DEADLINE, now=115.0)
    assert countdown.shown_s(now=115.0) == pytest.approx(585)


def test_time_granted_moves_the_deadline_and_is_taken_at_once() -> None:
    countdown = running(60, at=100.0)
    assert countdown.update(660_000, "running", DEADLINE + 600, now=100.0)
    assert countdown.shown_s(now=110.0) == pytest.approx(650)


def test_a_pause_freezes_it_and_the_resume_is_taken() -> None:
    countdown = running(300, at=100.0)
    assert countdown.update(290_000, "paused", None, now=110.0)
    assert countdown.shown_s(now=200.0) == pytest.approx(290)
    assert countdown.update(290_000, "running", DEADLINE + 90, now=200.0)
    assert countdown.shown_s(now=210.0) == pytest.approx(280)


def test_a_pong_only_lowers_it_and_counts_its_age() -> None:
    countdown = running(600, at=100.0)
    assert not countdown.offer(590_500, "running", age_s=0.1, now=110.0)  # shows 590.4 > 590
    assert countdown.offer(589_900, "running", age_s=0.1, now=110.0)
    assert countdown.shown_s(now=110.0) == pytest.approx(589.8)


def test_a_kept_figure_gives_way_after_a_while() -> None:
    countdown = running(600, at=100.0)
    later = 100.0 + KEEP_S + 1
    # The device clock ran fast: the kept figure shows less than the server's fresh one.
    assert countdown.update(int((600 - KEEP_S - 1 + 0.2) * 1000), "running", DEADLINE, now=later)
    assert countdown.shown_s(now=later) == pytest.approx(600 - KEEP_S - 1 + 0.2)


def test_nothing_is_shown_before_the_first_figure() -> None:
    assert Countdown().shown_s(now=1.0) is None
