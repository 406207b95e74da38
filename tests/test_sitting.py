"""The sitting state machine, without an event loop."""

from __future__ import annotations

from dataclasses import replace

import pytest

from engine.exceptions import IllegalTransition, SequenceError, TooLate, UnknownItem
from engine.model import Form, FormItem
from engine.sitting import TRANSITIONS, Sitting, Snapshot, State, Trigger

T0 = 1_800_000_000.0
LIMIT = 90 * 60


def make_sitting(state: State = State.SCHEDULED) -> Sitting:
    form = Form(
        "kz-demo",
        "c1",
        "legislation",
        (FormItem("q1", (2, 0, 1, 3)), FormItem("q2", (0, 1, 2, 3)), FormItem("q3", (3, 2, 1, 0))),
    )
    snapshot = Snapshot("kz-demo/c1/legislation", "kz-demo", "c1", "legislation", LIMIT)
    sitting = Sitting(snapshot, form, ("kk", "ru"))
    if state is not State.SCHEDULED:
        sitting.check_in(T0 - 60, by="proctor-1")
    if state in (State.RUNNING, State.PAUSED):
        sitting.start(T0, language="kk")
    if state is State.PAUSED:
        sitting.pause(T0 + 100, by="proctor-1", reason="camera check")
    return sitting


def test_the_happy_path_runs_to_submitted() -> None:
    sitting = make_sitting()
    sitting.check_in(T0 - 60, by="proctor-1")
    started = sitting.start(T0, language="ru")
    assert started.data["deadline"] == T0 + LIMIT
    event = sitting.answer(seq=1, item_id="q1", shown=0, flagged=False, now=T0 + 5)
    assert event is not None and event.answer is not None
    assert event.answer.choice == 2, "shown position 0 maps to original option 2"
    closed = sitting.submit(T0 + 10)
    assert sitting.state is State.SUBMITTED
    assert closed.kind == "submitted" and closed.data["answered"] == 1


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("trigger", list(Trigger))
def test_every_move_not_in_the_table_is_refused_and_changes_nothing(
    state: State, trigger: Trigger
) -> None:
    if (state, trigger) in TRANSITIONS:
        return
    sitting = make_sitting()
    sitting.snapshot = _with_state(sitting.snapshot, state)
    before = sitting.snapshot
    with pytest.raises(IllegalTransition):
        _fire(sitting, trigger)
    assert sitting.snapshot == before


def _with_state(snapshot: Snapshot, state: State) -> Snapshot:
    from dataclasses import replace

    started = T0 if state in (State.RUNNING, State.PAUSED) else None
    paused = T0 + 1 if state is State.PAUSED else None
    return replace(snapshot, state=state, started_at=started, paused_at=paused, language="kk")


def _fire(sitting: Sitting, trigger: Trigger) -> None:
    now = T0 + 10
    actions = {
        Trigger.CONFIRM_IDENTITY: lambda: sitting.confirm_identity(now, by="p", document="x"),
        Trigger.CHECK_IN: lambda: sitting.check_in(now, by="p"),
        Trigger.START: lambda: sitting.start(now, language="kk"),
        Trigger.ANSWER: lambda: sitting.answer(
            seq=1, item_id="q1", shown=0, flagged=False, now=now
        ),
        Trigger.PAUSE: lambda: sitting.pause(now, by="p", reason="r"),
        Trigger.RESUME: lambda: sitting.resume(now, by="p"),
        Trigger.GRANT_TIME: lambda: sitting.grant_time(now, seconds=60, by="p", reason="r"),
        Trigger.SUBMIT: lambda: sitting.submit(now),
        Trigger.EXPIRE: lambda: sitting.expire(now),
        Trigger.TERMINATE: lambda: sitting.terminate(now, by="p", reason="r"),
        Trigger.MARK_NO_SHOW: lambda: sitting.mark_no_show(now, by="p"),
    }
    actions[trigger]()


def test_a_language_not_offered_is_refused() -> None:
    sitting = make_sitting(State.CHECKED_IN)
    with pytest.raises(IllegalTransition, match="language 'uk' is not offered"):
        sitting.start(T0, language="uk")
    assert sitting.state is State.CHECKED_IN


def test_answers_are_idempotent_by_sequence_number() -> None:
    sitting = make_sitting(State.RUNNING)
    assert sitting.answer(seq=1, item_id="q1", shown=1, flagged=True, now=T0 + 1) is not None
    assert sitting.answer(seq=1, item_id="q1", shown=1, flagged=True, now=T0 + 2) is None
    assert sitting.last_seq == 1


def test_a_replayed_number_with_other_content_is_refused() -> None:
    sitting = make_sitting(State.RUNNING)
    sitting.answer(seq=1, item_id="q1", shown=1, flagged=False, now=T0 + 1)
    with pytest.raises(SequenceError) as refused:
        sitting.answer(seq=1, item_id="q2", shown=1, flagged=False, now=T0 + 2)
    assert refused.value.code == "seq_replayed"
    assert sitting.answers["q1"].choice == 0


def test_a_gap_in_numbers_is_refused_with_the_expected_number() -> None:
    sitting = make_sitting(State.RUNNING)
    with pytest.raises(SequenceError, match="next expected is 1") as refused:
        sitting.answer(seq=3, item_id="q1", shown=1, flagged=False, now=T0 + 1)
    assert refused.value.code == "seq_gap"
    assert sitting.last_seq == 0


def test_an_item_not_on_the_form_or_an_option_out_of_range_is_refused() -> None:
    sitting = make_sitting(State.RUNNING)
    with pytest.raises(UnknownItem, match="not in this form"):
        sitting.answer(seq=1, item_id="q99", shown=0, flagged=False, now=T0 + 1)
    with pytest.raises(UnknownItem, match=r"options 0\.\.3"):
        sitting.answer(seq=1, item_id="q1", shown=4, flagged=False, now=T0 + 1)
    assert sitting.last_seq == 0


def test_clearing_an_answer_keeps_it_unanswered() -> None:
    sitting = make_sitting(State.RUNNING)
    sitting.answer(seq=1, item_id="q1", shown=1, flagged=False, now=T0 + 1)
    sitting.answer(seq=2, item_id="q1", shown=None, flagged=True, now=T0 + 2)
    assert sitting.answers["q1"].choice is None and sitting.answered() == []


def test_the_answered_count_follows_changes_clears_and_a_restore() -> None:
    sitting = make_sitting(State.RUNNING)
    moves = [("q1", 1), ("q2", 0), ("q1", None), ("q1", 3), ("q3", None), ("q2", 2)]
    for seq, (item, shown) in enumerate(moves, start=1):
        sitting.answer(seq=seq, item_id=item, shown=shown, flagged=False, now=T0 + seq)
        assert sitting.answered_count == len(sitting.answered())
    assert sitting.answered_count == 2
    restored = Sitting(sitting.snapshot, sitting.form, ("kk",), sitting.answers.values())
    assert restored.answered_count == 2


def test_an_answer_at_the_deadline_is_too_late() -> None:
    sitting = make_sitting(State.RUNNING)
    sitting.answer(seq=1, item_id="q1", shown=1, flagged=False, now=T0 + LIMIT - 0.001)
    with pytest.raises(TooLate, match=r"0\.000 s after the deadline"):
        sitting.answer(seq=2, item_id="q2", shown=1, flagged=False, now=T0 + LIMIT)
    assert sitting.last_seq == 1


def test_pause_stops_the_clock_and_resume_gives_the_time_back() -> None:
    sitting = make_sitting(State.RUNNING)
    sitting.pause(T0 + 600, by="p", reason="noise")
    assert sitting.deadline() is None
    assert sitting.remaining(T0 + 900) == LIMIT - 600
    resumed = sitting.resume(T0 + 900, by="p")
    assert resumed.data["paused_s"] == 300
    assert sitting.deadline() == T0 + LIMIT + 300
    assert sitting.remaining(T0 + 900) == LIMIT - 600


def test_extra_time_moves_the_deadline() -> None:
    sitting = make_sitting(State.RUNNING)
    sitting.grant_time(T0 + 10, seconds=120, by="p", reason="reconnect lost 2 minutes")
    assert sitting.deadline() == T0 + LIMIT + 120
    with pytest.raises(IllegalTransition):
        sitting.grant_time(T0 + 20, seconds=-5, by="p", reason="r")


def test_expiry_records_the_deadline_not_the_moment_it_was_noticed() -> None:
    sitting = make_sitting(State.RUNNING)
    event = sitting.expire(T0 + LIMIT + 3600)
    assert event.at == T0 + LIMIT
    assert event.data["noticed_late_s"] == 3600
    assert sitting.snapshot.closed_at == T0 + LIMIT and sitting.state is State.EXPIRED


def test_submit_after_the_deadline_is_too_late() -> None:
    sitting = make_sitting(State.RUNNING)
    with pytest.raises(TooLate):
        sitting.submit(T0 + LIMIT + 1)
    assert sitting.state is State.RUNNING


def test_terminating_a_paused_sitting_counts_the_pause() -> None:
    sitting = make_sitting(State.PAUSED)
    event = sitting.terminate(T0 + 400, by="p", reason="phone on the desk")
    assert sitting.state is State.TERMINATED and event.data["reason"] == "phone on the desk"
    assert sitting.snapshot.paused_total_s == 300


def test_restoring_from_answers_keeps_the_latest_per_item_and_the_history() -> None:
    first = make_sitting(State.RUNNING)
    events = [
        first.answer(seq=1, item_id="q1", shown=1, flagged=False, now=T0 + 1),
        first.answer(seq=2, item_id="q1", shown=2, flagged=False, now=T0 + 2),
    ]
    records = [event.answer for event in events if event and event.answer]
    again = Sitting(first.snapshot, first.form, first.languages, reversed(records))
    assert again.answers["q1"].seq == 2
    assert again.answer(seq=1, item_id="q1", shown=1, flagged=False, now=T0 + 3) is None


def test_admission_waits_for_the_identity_check_when_required() -> None:
    sitting = make_sitting()
    sitting.requires_identity = True
    with pytest.raises(IllegalTransition) as refused:
        sitting.check_in(T0, by="proctor-1")
    assert refused.value.code == "identity_required" and sitting.state is State.SCHEDULED
    confirmed = sitting.confirm_identity(T0 + 1, by="proctor-1", document="900514300305")
    assert confirmed.data == {"by": "proctor-1", "document": "900514300305"}
    sitting.check_in(T0 + 2, by="proctor-1")
    assert sitting.state is State.CHECKED_IN
    assert (sitting.snapshot.identity_by, sitting.snapshot.identity_at) == ("proctor-1", T0 + 1)


def test_time_lost_to_a_disconnect_is_measured_and_can_be_given_back() -> None:
    sitting = make_sitting(State.RUNNING)
    sitting.disconnected(T0 + 100)
    event = sitting.reconnected(T0 + 145)
    assert event.data["lost_s"] == 45 and sitting.snapshot.lost_s == 45
    returned = sitting.return_lost_time(T0 + 150, by="proctor-1")
    assert returned.kind == "lost-time-returned" and returned.data["seconds"] == 45
    assert sitting.deadline() == T0 + LIMIT + 45 and sitting.snapshot.lost_s == 0
    with pytest.raises(IllegalTransition, match="no time lost"):
        sitting.return_lost_time(T0 + 160, by="proctor-1")


def test_a_disconnect_before_start_loses_no_time() -> None:
    sitting = make_sitting(State.CHECKED_IN)
    sitting.disconnected(T0 - 30)
    assert sitting.reconnected(T0 - 10).data["lost_s"] == 0


def test_time_away_after_the_deadline_is_not_counted_as_lost() -> None:
    sitting = make_sitting(State.RUNNING)
    sitting.disconnected(T0 + LIMIT - 10)
    assert sitting.reconnected(T0 + LIMIT + 500).data["lost_s"] == 10


def test_an_answer_changes_only_last_seq_of_the_snapshot() -> None:
    sitting = make_sitting(State.RUNNING)
    before = sitting.snapshot
    sitting.answer(seq=1, item_id="q2", shown=3, flagged=True, now=T0 + 7)
    assert sitting.snapshot == replace(before, last_seq=1)
    assert sitting.snapshot is not before and before.last_seq == 0
    assert hash(sitting.snapshot) == hash(replace(before, last_seq=1))


def test_an_answer_copies_every_field_of_the_snapshot_but_last_seq() -> None:
    """The answer path copies the frozen snapshot field by field: none may be left behind."""
    sitting = make_sitting(State.RUNNING)
    every_field_set = replace(
        sitting.snapshot,
        extra_s=30.0,
        paused_total_s=12.0,
        close_reason="-",
        identity_by="proctor-2",
        identity_at=T0 - 30,
        disconnected_at=T0 + 2,
        lost_s=1.5,
    )
    sitting.snapshot = every_field_set
    sitting.answer(seq=1, item_id="q2", shown=3, flagged=True, now=T0 + 5)
    assert sitting.snapshot == replace(every_field_set, last_seq=1)
    assert sitting.snapshot is not every_field_set and every_field_set.last_seq == 0
