"""A whole exam over a real socket: sign in, start, answer, resume, submit, expire."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
import time
from collections.abc import Awaitable, Callable

import aiohttp
import msgpack
import pytest
from websockets.asyncio.client import connect

from engine import journal, wire
from engine.client import CandidateClient, ClientError, sign_in, ws_url
from engine.forms import shown_key
from engine.store.sqlite import SQLiteStore, read_journal
from tests.e2e.conftest import Running


def db(running: Running) -> sqlite3.Connection:
    return sqlite3.connect(running.config.data_dir / SQLiteStore.FILE_NAME)


async def test_a_candidate_takes_a_whole_part_and_gets_a_result(running: Running) -> None:
    client, signed = await running.candidate()
    assert signed["exam"]["languages"] == ["kk", "ru"]
    welcome = client.view.welcome
    assert welcome is not None and welcome.state == "checked-in" and welcome.item_count == 12
    form = await client.start("kk")
    assert len(form.items) == 12 and form.language == "kk"
    assert all(item.stem.endswith(", kk") for item in form.items)
    for item in form.items:
        ack = await client.answer(item.id, 0)
        assert ack is not None and ack.item == item.id
    closed = await client.submit()
    assert closed.state == "submitted" and closed.answered == 12
    assert closed.result is not None and closed.result["max_score"] == 12
    assert client.close_code == wire.CloseCode.NORMAL
    with db(running) as connection:
        stored = connection.execute("SELECT count(*) FROM answers").fetchone()[0]
        state = connection.execute("SELECT state FROM sittings").fetchone()[0]
    assert (stored, state) == (12, "submitted")


async def test_the_form_carries_no_key_and_differs_between_candidates(running: Running) -> None:
    first, _ = await running.candidate()
    second, _ = await running.candidate()
    form_a, form_b = await first.start("ru"), await second.start("ru")
    assert [i.id for i in form_a.items] != [i.id for i in form_b.items]
    await first.drop()
    async with connect(ws_url(running.url)) as raw:
        await raw.send(wire.serialize(wire.Hello(1, first.token, "main")))
        frames = [msgpack.unpackb(await raw.recv()) for _ in range(3)]
    assert [frame["t"] for frame in frames] == ["welcome", "form", "clock"]
    assert {key for item in frames[1]["items"] for key in item} == {"id", "stem", "options"}
    sitting = running.hall.live[frames[0]["sitting"]].sitting
    shown_keys = {
        shown_key(form_item, bank_item)
        for form_item in sitting.form.items
        for bank_item in [running.hall.exams["t-exam"].banks["main"].by_id[form_item.item_id]]
    }
    assert len(shown_keys) > 1, "the right option is not always in the same place"
    await second.close()


async def test_a_reconnect_resumes_every_answer_and_the_true_remaining_time(
    running: Running,
) -> None:
    client, _ = await running.candidate()
    form = await client.start("ru")
    chosen = {item.id: index % len(item.options) for index, item in enumerate(form.items[:5])}
    for item_id, choice in chosen.items():
        await client.answer(item_id, choice, flagged=choice == 1)
    remaining_before = client.view.remaining_s()
    await asyncio.sleep(0.3)
    welcome = await client.resume()
    assert welcome.state == "running" and welcome.next_seq == 6
    assert {a.item: a.choice for a in welcome.answers} == chosen
    assert {a.item for a in welcome.answers if a.flagged} == {
        item for item, choice in chosen.items() if choice == 1
    }
    assert remaining_before is not None
    assert welcome.remaining_ms / 1000 < remaining_before
    assert welcome.remaining_ms / 1000 > remaining_before - 5
    ack = await client.answer(form.items[6].id, 1)
    assert ack is not None and ack.seq == 6
    await client.close()


async def test_the_hall_knows_while_a_candidate_is_answering(running: Running) -> None:
    """Checked in is not answering yet; submitted is answering no more."""
    client, _ = await running.candidate()
    assert not running.hall.has_running_sittings(), "checked in is not answering yet"
    await client.start("kk")
    assert running.hall.has_running_sittings()
    await client.submit()
    assert not running.hall.has_running_sittings()
    await client.close()


async def test_the_hall_is_quiet_only_with_nobody_signing_in_connected_or_running(
    running: Running,
) -> None:
    """What lets the collector walk the heap: a start storm begins with sign-ins and
    connections, before anyone runs."""
    hall = running.hall
    assert hall.is_quiet()
    client, _ = await running.candidate()
    assert not hall.is_quiet(), "signed in a moment ago"
    hall.quiet_after_sign_in_s = 0.0
    assert not hall.is_quiet(), "connected, checked in"
    await client.start("kk")
    await client.close()
    for _ in range(100):
        if all(live.link is None for live in hall.live.values()):
            break
        await asyncio.sleep(0.02)
    assert hall.has_running_sittings() and not hall.is_quiet(), "gone, but may resume any moment"
    resumed = CandidateClient(running.url, client.token, "main")
    await resumed.connect()
    await resumed.submit()
    await resumed.close()
    for _ in range(100):
        if hall.is_quiet():
            break
        await asyncio.sleep(0.02)
    assert hall.is_quiet(), "submitted and gone"


async def test_ping_returns_the_server_clock(running: Running) -> None:
    client, _ = await running.candidate()
    await client.start("kk")
    pong = await client.ping()
    assert abs(pong.server_time - time.time()) < 5
    assert 0 < pong.remaining_ms <= 90 * 60 * 1000
    await client.close()


async def test_the_server_closes_the_sitting_at_the_deadline(running: Running) -> None:
    client, _ = await running.candidate("t-short")
    await client.start("kk")
    warning = await client.next_message(wire.TimeWarning, timeout_s=10)
    assert isinstance(warning, wire.TimeWarning) and warning.threshold_s == 2
    closed = await client.wait_closed(timeout_s=10)
    assert closed.state == "expired" and closed.reason == "time is up"
    assert client.close_code == wire.CloseCode.NORMAL


async def test_a_disconnected_sitting_still_expires_at_its_deadline(running: Running) -> None:
    client, signed = await running.candidate("t-short")
    await client.start("kk")
    await client.answer((client.view.form.items[0]).id, 0)  # type: ignore[union-attr]
    deadline = client.view.clock.deadline  # type: ignore[union-attr]
    await client.drop()
    await asyncio.sleep(5)
    with db(running) as connection:
        state, closed_at = connection.execute("SELECT state, closed_at FROM sittings").fetchone()
    assert state == "expired" and closed_at == deadline
    again = CandidateClient(running.url, signed["token"], "main")
    try:
        await again.connect()
        raise AssertionError("a closed sitting must refuse the hello")
    except ClientError as refused:
        assert refused.close_code == wire.CloseCode.GONE
    assert again.view.closed is not None and again.view.closed.state == "expired"


async def test_the_journal_verifies_after_an_exam(running: Running) -> None:
    client, _ = await running.candidate()
    form = await client.start("kk")
    for item in form.items[:3]:
        await client.answer(item.id, 1)
    await client.submit()
    data = running.config.data_dir
    report = journal.verify(read_journal(data / SQLiteStore.FILE_NAME), journal.read_head(data))
    kinds = [entry.kind for entry in read_journal(data / SQLiteStore.FILE_NAME)]
    assert report.events == len(kinds)
    assert kinds.count("answer") == 3 and "submitted" in kinds and "started" in kinds


async def test_access_codes_work_once(running: Running) -> None:
    _, code = running.codes().rows[-1]
    await sign_in(running.url, code)
    try:
        await sign_in(running.url, code)
        raise AssertionError("a used code must be refused")
    except ClientError as refused:
        assert refused.code == "code_used"
    try:
        await sign_in(running.url, "NOPE-NOPE")
        raise AssertionError("an unknown code must be refused")
    except ClientError as refused:
        assert refused.code == "bad_code"


async def test_health_reports_the_loops_lag_and_the_stores_commits(running: Running) -> None:
    client, _ = await running.candidate()
    form = await client.start("kk")
    for item in form.items[:3]:
        await client.answer(item.id, 1)
    await asyncio.sleep(0.2)  # a few wake-ups of the lag sleeper
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{running.url}/api/v1/health") as response,
    ):
        health = await response.json()
    assert health["loop_lag_ms"]["samples"] >= 1
    assert 0 <= health["loop_lag_ms"]["p50"] <= health["loop_lag_ms"]["max"]
    store = health["store"]
    assert store["commits"] >= 2 and store["jobs"] >= store["commits"]
    assert store["recent_commit_ms"]["samples"] == min(store["commits"], SQLiteStore.RECENT_COMMITS)
    assert store["recent_commit_ms"]["max"] > 0


async def _clock_times(running: Running, token: str, seconds: float) -> list[float]:
    """Reconnect with `token` and return the server_time of every clock for `seconds`."""
    times: list[float] = []
    async with connect(ws_url(running.url)) as raw:
        await raw.send(wire.serialize(wire.Hello(1, token, "main")))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while True:
                    frame = msgpack.unpackb(await raw.recv())
                    if frame["t"] == "clock":
                        times.append(frame["server_time"])
    return times


async def test_each_sitting_gets_its_clock_on_its_own_phase(
    start_server: Callable[..., Awaitable[Running]],
) -> None:
    running = await start_server(tick_interval_s=0.6, clock_check_s=0.05)
    first, _ = await running.candidate()
    second, _ = await running.candidate()
    await first.start("kk")
    await second.start("kk")
    await first.drop()
    await second.drop()
    first_clocks, second_clocks = await asyncio.gather(
        _clock_times(running, first.token, 2.0),
        _late_clock_times(running, second.token, 0.3, 1.7),
    )
    for clocks in (first_clocks, second_clocks):
        assert len(clocks) >= 3  # the one on reconnecting, then one every 0.6 s
        gaps = [later - earlier for earlier, later in itertools.pairwise(clocks)]
        assert all(0.55 <= gap <= 0.8 for gap in gaps), gaps
    # Each follows its own reconnect, 0.3 s apart: not one tick for both.
    assert min(abs(a - b) for a in first_clocks for b in second_clocks) >= 0.15


async def _late_clock_times(
    running: Running, token: str, delay_s: float, seconds: float
) -> list[float]:
    await asyncio.sleep(delay_s)
    return await _clock_times(running, token, seconds)


async def test_a_cancelled_wait_for_a_commit_forgets_the_sitting_and_the_store_stays_the_truth(
    running: Running,
) -> None:
    """The hall awaits the commit unshielded; if that wait is cancelled, memory is dropped."""
    client, _ = await running.candidate()
    form = await client.start("kk")
    assert client.view.welcome is not None
    sitting_id = client.view.welcome.sitting
    hall = running.hall
    live = hall.live[sitting_id]
    event = live.sitting.answer(
        seq=1, item_id=form.items[0].id, shown=2, flagged=False, now=hall.now()
    )
    assert event is not None
    waiting = asyncio.create_task(hall.persist(live, event))
    await asyncio.sleep(0)  # now waiting on the commit
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert sitting_id not in hall.live, "forgotten: its outcome can no longer be awaited"
    welcome = await client.resume()
    assert welcome.next_seq == 2, "the writer stored the record all the same"
    assert [(a.seq, a.item) for a in welcome.answers] == [(1, form.items[0].id)]
    ack = await client.answer(form.items[1].id, 0)
    assert ack is not None and ack.seq == 2
    await client.close()
