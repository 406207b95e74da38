"""Proctors over real sockets: roles and sites, every action, irregularities, a slow watcher."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import pytest
from websockets.asyncio.client import connect

from engine import wire
from engine.client import (
    CandidateClient,
    ClientError,
    ProctorClient,
    sign_in,
    staff_sign_in_sync,
    ws_url,
)
from engine.roster import iin_is_valid
from engine.server.hall import WATCH_SLICE, LiveSitting
from engine.sitting import State
from tests.e2e.conftest import Running
from tests.e2e.harness import read_staff

EXAM = "t-proctored"


@dataclass
class Desk:
    """Signed-in staff of the proctored test exam."""

    running: Running
    passwords: dict[str, str]

    async def token(self, login: str) -> str:
        signed = await asyncio.to_thread(
            staff_sign_in_sync, self.running.url, login, self.passwords[login]
        )
        return str(signed["token"])

    async def watch(self, login: str, site: str | None = None) -> ProctorClient:
        desk = ProctorClient(self.running.url, await self.token(login))
        await desk.connect(site)
        return desk


@pytest.fixture
async def desk(running: Running) -> Desk:
    return Desk(running, read_staff(running.config.data_dir, EXAM))


async def candidate_at(running: Running, site: str) -> tuple[CandidateClient, dict[str, Any]]:
    """A candidate of the proctored exam at this site, connected and waiting for admission."""
    for candidate_id, code in running.codes(EXAM).rows:
        runtime = running.hall.exams[EXAM]
        if runtime.candidates[candidate_id].site_id != site:
            continue
        if candidate_id in running._used.setdefault(EXAM, set()):
            continue
        running._used[EXAM].add(candidate_id)
        signed = await sign_in(running.url, code)
        client = CandidateClient(running.url, signed["token"], "main")
        await client.connect()
        return client, {**signed, "document": runtime.candidates[candidate_id].document}
    raise RuntimeError(f"no candidate left at {site}")


def sitting_of(client: CandidateClient) -> str:
    assert client.view.welcome is not None
    return client.view.welcome.sitting


async def admitted(proctor: ProctorClient, client: CandidateClient, document: str) -> wire.FormOut:
    sitting = sitting_of(client)
    assert (await proctor.act(sitting, "confirm-identity", document=document)).ok
    assert (await proctor.act(sitting, "admit")).ok
    await client.wait_admitted(timeout_s=10)
    return await client.start("kk")


# -- roles and sites ---------------------------------------------------------------------------


async def test_a_proctor_sees_only_the_sittings_of_their_site(desk: Desk) -> None:
    proctor_a = await desk.watch("proctor-a")
    sites = {tile.site for tile in proctor_a.tiles.values()}
    assert sites == {"site-a"} and len(proctor_a.tiles) == 20
    with pytest.raises(ClientError) as refused:
        await desk.watch("proctor-a", "site-b")
    assert refused.value.close_code == wire.CloseCode.FORBIDDEN
    admin = await desk.watch("admin")
    await admin.wait_for(lambda p: {tile.site for tile in p.tiles.values()} == {"site-a", "site-b"})
    assert len(admin.tiles) == 40
    await proctor_a.close()
    await admin.close()


async def test_a_proctor_cannot_act_on_another_site(desk: Desk) -> None:
    client, signed = await candidate_at(desk.running, "site-b")
    proctor_a = await desk.watch("proctor-a")
    result = await proctor_a.act(
        sitting_of(client), "confirm-identity", document=signed["document"]
    )
    assert (result.ok, result.code) == (False, "forbidden")
    detail = await proctor_a.detail(sitting_of(client))
    assert isinstance(detail, wire.ActionResult) and detail.code == "forbidden"
    await proctor_a.close()
    await client.close()


async def test_an_observer_watches_and_every_action_is_refused(desk: Desk) -> None:
    client, signed = await candidate_at(desk.running, "site-a")
    observer = await desk.watch("observer")
    await observer.wait_for(lambda p: len(p.tiles) == 40)
    for kind, fields in [
        ("confirm-identity", {"document": signed["document"]}),
        ("admit", {}),
        ("warn", {"text": "hello"}),
        ("terminate", {"reason": "test"}),
    ]:
        result = await observer.act(sitting_of(client), kind, **fields)
        assert (result.ok, result.code) == (False, "forbidden"), kind
    detail = await observer.detail(sitting_of(client))
    assert isinstance(detail, wire.DetailReply)
    assert client.view.status is None, "nothing reached the candidate"
    await observer.close()
    await client.close()


async def test_a_candidate_token_does_not_open_the_proctor_socket(running: Running) -> None:
    _, code = running.codes(EXAM).rows[-1]
    token = (await sign_in(running.url, code))["token"]
    desk = ProctorClient(running.url, token)
    with pytest.raises(ClientError) as refused:
        await desk.connect()
    assert refused.value.code == "wrong_role"
    assert refused.value.close_code == wire.CloseCode.UNAUTHORIZED


async def test_staff_sign_in_refuses_a_wrong_password(running: Running) -> None:
    with pytest.raises(ClientError) as refused:
        await asyncio.to_thread(staff_sign_in_sync, running.url, "proctor-a", "not-it")
    assert refused.value.code == "bad_login"


# -- actions -----------------------------------------------------------------------------------


async def test_identity_must_be_confirmed_with_the_right_iin_before_admission(desk: Desk) -> None:
    client, signed = await candidate_at(desk.running, "site-a")
    assert client.view.welcome is not None and client.view.welcome.state == "scheduled"
    proctor = await desk.watch("proctor-a")
    sitting = sitting_of(client)
    early = await proctor.act(sitting, "admit")
    assert (early.ok, early.code) == (False, "identity_required")
    bad_digit = signed["document"][:-1] + str((int(signed["document"][-1]) + 1) % 10)
    invalid = await proctor.act(sitting, "confirm-identity", document=bad_digit)
    assert (invalid.ok, invalid.code) == (False, "identity_mismatch")
    other = next(
        c.document
        for c in desk.running.hall.exams[EXAM].candidates.values()
        if c.document != signed["document"] and iin_is_valid(c.document)
    )
    wrong_person = await proctor.act(sitting, "confirm-identity", document=other)
    assert (wrong_person.ok, "does not match") == (
        False,
        "does not match",
    ) and "does not match" in wrong_person.message
    assert (await proctor.act(sitting, "confirm-identity", document=signed["document"])).ok
    assert (await proctor.act(sitting, "admit")).ok
    await client.wait_admitted()
    form = await client.start("ru")
    assert len(form.items) == 12
    await proctor.wait_for(lambda p: p.tiles[sitting].state == "running")
    tile = proctor.tiles[sitting]
    assert tile.identity is not None and tile.identity["by"] == "proctor-a"
    detail = await proctor.detail(sitting)
    assert isinstance(detail, wire.DetailReply)
    confirmed = [e for e in detail.events if e["kind"] == "identity-confirmed"]
    assert confirmed[0]["data"]["by"] == "proctor-a"
    assert [e["data"]["by"] for e in detail.events if e["kind"] == "checked-in"] == ["proctor-a"]
    await proctor.close()
    await client.close()


async def test_warn_pause_resume_and_extra_time_reach_the_candidate(desk: Desk) -> None:
    client, signed = await candidate_at(desk.running, "site-a")
    proctor = await desk.watch("proctor-a")
    form = await admitted(proctor, client, signed["document"])
    sitting = sitting_of(client)
    assert client.view.clock is not None
    deadline = client.view.clock.deadline
    assert deadline is not None

    assert (await proctor.act(sitting, "warn", text="Eyes on your own screen")).ok
    notice = await client.next_message(wire.Notice)
    assert isinstance(notice, wire.Notice) and notice.text == "Eyes on your own screen"

    assert (await proctor.act(sitting, "pause", reason="fire alarm test")).ok
    status = await client.next_message(wire.Status)
    assert isinstance(status, wire.Status) and status.state == "paused"
    frozen = await client.next_message(wire.Clock)
    assert isinstance(frozen, wire.Clock) and (frozen.state, frozen.deadline) == ("paused", None)
    with pytest.raises(ClientError) as refused:
        await client.answer(form.items[0].id, 0)
    assert refused.value.code == "illegal_state"
    client.next_seq -= 1
    await asyncio.sleep(0.5)
    assert (await proctor.act(sitting, "resume")).ok
    clock = await client.next_message(wire.Clock)
    assert isinstance(clock, wire.Clock) and clock.deadline is not None
    assert clock.deadline - deadline >= 0.5, "the paused time was given back"

    assert (await proctor.act(sitting, "grant-time", seconds=120, reason="noise outside")).ok
    later = await client.next_message(wire.Clock)
    assert isinstance(later, wire.Clock) and later.deadline is not None
    assert later.deadline == pytest.approx(clock.deadline + 120)
    missing = await proctor.act(sitting, "grant-time", seconds=60)
    assert (missing.ok, missing.code) == (False, "bad_field")

    detail = await proctor.detail(sitting)
    assert isinstance(detail, wire.DetailReply)
    kinds = {e["kind"]: e["data"] for e in detail.events}
    assert kinds["warned"]["by"] == "proctor-a" and kinds["paused"]["reason"] == "fire alarm test"
    assert kinds["time-granted"] == {
        **kinds["time-granted"],
        "seconds": 120,
        "by": "proctor-a",
        "reason": "noise outside",
    }
    await proctor.close()
    await client.close()


async def test_terminate_stops_the_sitting_at_once_and_annuls_it(desk: Desk) -> None:
    client, signed = await candidate_at(desk.running, "site-a")
    proctor = await desk.watch("proctor-a")
    form = await admitted(proctor, client, signed["document"])
    await client.answer(form.items[0].id, 0)
    assert (await proctor.act(sitting_of(client), "terminate", reason="phone on the desk")).ok
    closed = await client.wait_closed()
    assert closed.state == "terminated" and closed.reason == "phone on the desk"
    assert closed.result is not None and closed.result["outcome"] == "annulled"
    again = await proctor.act(sitting_of(client), "resume")
    assert (again.ok, again.code) == (False, "illegal_state")
    await proctor.close()


async def test_a_scheduled_candidate_can_be_marked_no_show(desk: Desk) -> None:
    proctor = await desk.watch("proctor-b")
    sitting = next(t.sitting for t in proctor.tiles.values() if not t.connected)
    assert (await proctor.act(sitting, "no-show")).ok
    await proctor.wait_for(lambda p: p.tiles[sitting].state == "no-show")
    await proctor.close()


async def test_time_lost_to_a_disconnect_is_shown_and_given_back(desk: Desk) -> None:
    client, signed = await candidate_at(desk.running, "site-a")
    proctor = await desk.watch("proctor-a")
    await admitted(proctor, client, signed["document"])
    sitting = sitting_of(client)
    await proctor.wait_for(lambda p: p.tiles[sitting].state == "running")
    await client.drop()
    await proctor.wait_for(lambda p: not p.tiles[sitting].connected)
    assert any(i.kind == "disconnected" and i.sitting == sitting for i in proctor.irregularities)
    await asyncio.sleep(1.0)
    welcome = await client.resume()
    await proctor.wait_for(lambda p: p.tiles[sitting].lost_s >= 1.0)
    assert (await proctor.act(sitting, "return-lost-time")).ok
    status = await client.next_message(wire.Status)
    assert isinstance(status, wire.Status) and "given back" in status.reason
    clock = await client.next_message(wire.Clock)
    assert isinstance(clock, wire.Clock) and welcome.deadline is not None
    assert clock.deadline is not None and clock.deadline - welcome.deadline >= 1.0
    await proctor.wait_for(lambda p: p.tiles[sitting].lost_s == 0)
    await proctor.close()
    await client.close()


# -- irregularities ----------------------------------------------------------------------------


async def test_page_signals_become_irregularities_for_the_proctor(desk: Desk) -> None:
    client, signed = await candidate_at(desk.running, "site-a")
    proctor = await desk.watch("proctor-a")
    await admitted(proctor, client, signed["document"])
    sitting = sitting_of(client)
    raised = [
        "page-hidden",
        "focus-lost",
        "fullscreen-exit",
        "copy",
        "paste",
        "second-screen",
        "camera-stopped",
        "microphone-stopped",
        "media-error",
    ]
    for kind in [*raised, "page-visible", "focus-back"]:
        await client.send_raw(wire.serialize(wire.Signal(kind, time.time(), "")))
    await proctor.wait_for(
        lambda p: len([i for i in p.irregularities if i.sitting == sitting]) >= len(raised)
    )
    seen = [i.kind for i in proctor.irregularities if i.sitting == sitting]
    assert seen == raised, "calm signals are recorded but raise nothing"
    await proctor.wait_for(lambda p: p.tiles[sitting].irregularities == len(raised))
    assert proctor.tiles[sitting].attention == 3
    await client.send_raw(wire.serialize(wire.Signal("telepathy")))
    error = await client.next_message(wire.Error)
    assert isinstance(error, wire.Error) and error.code == "bad_signal" and not error.fatal
    await proctor.close()
    await client.close()


async def test_sustained_speech_in_the_audio_levels_is_flagged(desk: Desk) -> None:
    client, signed = await candidate_at(desk.running, "site-a")
    proctor = await desk.watch("proctor-a")
    await admitted(proctor, client, signed["document"])
    quiet = [0.01] * 50
    await client.send_raw(wire.serialize(wire.Levels(time.time(), 100, quiet)))
    speech = [0.01] * 10 + [0.3, 0.25, 0.0, 0.35] * 8 + [0.01] * 8
    await client.send_raw(wire.serialize(wire.Levels(time.time(), 100, speech)))
    await proctor.wait_for(lambda p: any(i.kind == "talk" for i in p.irregularities))
    talk = next(i for i in proctor.irregularities if i.kind == "talk")
    assert talk.source == "talk" and "3.2 s" in talk.detail
    too_many = wire.Levels(time.time(), 100, [0.0] * (wire.MAX_LEVELS_PER_FRAME + 1))
    await client.send_raw(wire.serialize(too_many))
    error = await client.next_message(wire.Error)
    assert isinstance(error, wire.Error) and error.code == "bad_levels"
    await proctor.close()
    await client.close()


async def test_silence_and_stalled_media_are_noticed_by_the_server(desk: Desk) -> None:
    client, signed = await candidate_at(desk.running, "site-a")
    proctor = await desk.watch("proctor-a")
    await admitted(proctor, client, signed["document"])
    hall = desk.running.hall
    live = hall.live[sitting_of(client)]
    live.last_seen = hall.now() - 60
    live.media_last_at = hall.now() - 60
    await hall.watch_health()
    await proctor.wait_for(
        lambda p: {"heartbeat-gap", "media-stalled"} <= {i.kind for i in p.irregularities}
    )
    await hall.watch_health()
    kinds = [i.kind for i in proctor.irregularities]
    assert kinds.count("heartbeat-gap") == 1, "one note per gap, not one per tick"
    await proctor.close()
    await client.close()


async def test_the_health_watch_lets_the_loop_run_while_it_looks(desk: Desk) -> None:
    """Over thousands of sittings the watch yields now and then: answers in flight go on."""
    hall = desk.running.hall
    submitted = SimpleNamespace(state=State.SUBMITTED)
    stand_ins = [f"stand-in-{n}" for n in range(3 * WATCH_SLICE)]
    for key in stand_ins:
        hall.live[key] = cast(LiveSitting, SimpleNamespace(link=None, sitting=submitted))
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(other_work())
    try:
        await asyncio.sleep(0)
        before = turns
        await hall.watch_health()
        assert turns - before >= 3, "the loop ran nothing else while the watch looked"
    finally:
        other.cancel()
        for key in stand_ins:
            del hall.live[key]


# -- a slow watcher ----------------------------------------------------------------------------


@pytest.fixture
async def stuck_watcher(desk: Desk) -> AsyncIterator[None]:
    """A proctor connection that never reads what it is sent."""
    async with connect(
        ws_url(desk.running.url).replace("candidate", "proctor"), max_queue=1, max_size=None
    ) as ws:
        await ws.send(wire.serialize(wire.Watch(1, await desk.token("admin"), None)))
        yield


async def test_a_proctor_who_does_not_read_slows_no_candidate(
    desk: Desk, stuck_watcher: None
) -> None:
    client, signed = await candidate_at(desk.running, "site-a")
    proctor = await desk.watch("proctor-a")
    form = await admitted(proctor, client, signed["document"])
    sitting = sitting_of(client)
    for round_ in range(5):
        for item in form.items:
            ack = await client.answer(item.id, round_ % len(item.options))
            assert ack is not None
            await client.send_raw(wire.serialize(wire.Signal("focus-lost", None, "x" * 150)))
    await proctor.wait_for(lambda p: p.tiles[sitting].answered == 12)
    await proctor.wait_for(
        lambda p: len([i for i in p.irregularities if i.sitting == sitting]) == 60
    )
    await proctor.close()
    await client.close()


async def test_a_candidate_on_another_device_signs_in_with_a_new_code_and_goes_on(
    desk: Desk,
) -> None:
    client, signed = await candidate_at(desk.running, "site-a")
    proctor = await desk.watch("proctor-a")
    form = await admitted(proctor, client, signed["document"])
    first = form.items[0].id
    await client.answer(first, 2)  # then the laptop froze, still connected; the code is used
    codes = dict(desk.running.codes(EXAM).rows)
    old_code = codes[signed["candidate"]["id"]]
    with pytest.raises(ClientError) as used:
        await sign_in(desk.running.url, old_code)
    assert used.value.code == "code_used"

    observer = await desk.watch("observer")
    refused = await observer.act(sitting_of(client), "new-code")
    assert (refused.ok, refused.code, refused.access_code) == (False, "forbidden", "")
    issued = await proctor.act(sitting_of(client), "new-code")
    assert issued.ok and len(issued.access_code) == 11 and issued.access_code != old_code
    with pytest.raises(ClientError) as gone:
        await sign_in(desk.running.url, old_code)
    assert gone.value.code == "bad_code", "the old code stops working"
    async with asyncio.timeout(5):
        while client.close_code is None:
            await asyncio.sleep(0.02)
    assert client.close_code == wire.CloseCode.UNAUTHORIZED, "the old device is let go"
    assert [e.code for e in client.view.errors] == ["token_replaced"]
    stale = CandidateClient(desk.running.url, client.token, "main")
    with pytest.raises(ClientError) as refused_token:
        await stale.connect()
    assert refused_token.value.code == "token_replaced", "and cannot come back"

    again = await sign_in(desk.running.url, issued.access_code)
    other_device = CandidateClient(desk.running.url, again["token"], "main")
    welcome = await other_device.connect()
    assert welcome.state == "running" and welcome.sitting == sitting_of(client)
    assert [(a.item, a.choice) for a in welcome.answers] == [(first, 2)], "the answer is there"
    with pytest.raises(ClientError):
        await sign_in(desk.running.url, issued.access_code)  # one use, as every code

    reissued = [
        e
        for e in await desk.running.hall.store.events_of(sitting_of(client))
        if e["kind"] == "access-code-reissued"
    ]
    assert [e["data"] for e in reissued] == [{"by": "proctor-a"}], "who, never the code"
    assert (await proctor.act(sitting_of(client), "terminate", reason="left the room")).ok
    closed = await proctor.act(sitting_of(client), "new-code")
    assert (closed.ok, closed.code) == (False, "illegal_state")
    await other_device.close()
    await client.close()
    await observer.close()
    await proctor.close()
