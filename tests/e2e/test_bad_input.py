"""Every kind of bad input gets a clear error and a defined close code; others carry on."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import jwt
import msgpack
import pytest
import websockets
from websockets.asyncio.client import connect

from engine import wire
from engine.client import CandidateClient, ClientError, sign_in, ws_url
from tests.e2e.conftest import Running


@pytest.fixture
async def bystander(running: Running) -> AsyncIterator[CandidateClient]:
    """Another candidate mid-test, who must notice nothing."""
    client, _ = await running.candidate()
    await client.start("ru")
    yield client
    await check_unaffected(client)
    await client.close()


async def check_unaffected(client: CandidateClient) -> None:
    assert client.view.form is not None
    item = client.view.form.items[len(client.acked) % len(client.view.form.items)]
    ack = await client.answer(item.id, 0)
    assert ack is not None
    pong = await client.ping()
    assert pong.remaining_ms > 0


async def raw_exchange(running: Running, *frames: bytes | str) -> tuple[list[wire.Message], int]:
    """Send frames on a fresh socket; return what came back and the close code."""
    received: list[wire.Message] = []
    async with connect(ws_url(running.url), max_size=None) as ws:
        with contextlib.suppress(websockets.ConnectionClosed):
            for frame in frames:
                await ws.send(frame)
            async for reply in ws:
                if isinstance(reply, bytes):
                    received.append(wire.parse(reply))
    assert ws.close_code is not None
    return received, ws.close_code


async def hello_frame(running: Running) -> bytes:
    _, code = running._fresh_code("t-exam")
    signed = await sign_in(running.url, code)
    return wire.serialize(wire.Hello(1, signed["token"], "main"))


def only_error(received: list[wire.Message]) -> wire.Error:
    errors = [msg for msg in received if isinstance(msg, wire.Error)]
    assert len(errors) == 1, received
    return errors[0]


async def test_an_oversized_frame_closes_with_1009(
    running: Running, bystander: CandidateClient
) -> None:
    hello = await hello_frame(running)
    _, close_code = await raw_exchange(running, hello, b"\x00" * (wire.MAX_FRAME_BYTES + 1))
    assert close_code == wire.CloseCode.TOO_BIG


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xc1\xc1", "malformed"),
        (msgpack.packb({"t": "teleport"}), "unknown_type"),
        (msgpack.packb({"t": "answer", "seq": "one", "item": "x", "choice": 0}), "bad_field"),
        ("a text frame", "text_frame"),
    ],
)
async def test_malformed_frames_close_with_4400(
    running: Running, bystander: CandidateClient, frame: bytes | str, code: str
) -> None:
    received, close_code = await raw_exchange(running, await hello_frame(running), frame)
    error = only_error(received)
    assert (error.code, error.fatal, close_code) == (code, True, wire.CloseCode.PROTOCOL)
    assert error.close_code == wire.CloseCode.PROTOCOL


async def test_anything_before_hello_closes_with_4400(running: Running) -> None:
    received, close_code = await raw_exchange(running, wire.serialize(wire.Start("kk")))
    assert only_error(received).code == "hello_first" and close_code == wire.CloseCode.PROTOCOL


async def test_an_unsupported_protocol_version_closes_with_4426(running: Running) -> None:
    _, code = running._fresh_code("t-exam")
    token = (await sign_in(running.url, code))["token"]
    received, close_code = await raw_exchange(running, wire.serialize(wire.Hello(99, token, "m")))
    assert only_error(received).code == "unsupported_version"
    assert close_code == wire.CloseCode.UNSUPPORTED


async def test_a_forged_token_for_another_candidate_closes_with_4401(
    running: Running, bystander: CandidateClient
) -> None:
    claims = jwt.decode(bystander.token, options={"verify_signature": False})
    claims["sub"] = "t-exam-00002"
    forged = jwt.encode(claims, b"not the server secret, 32 bytes!", algorithm="HS256")
    received, close_code = await raw_exchange(
        running, wire.serialize(wire.Hello(1, forged, "main"))
    )
    assert only_error(received).code == "bad_token" and close_code == wire.CloseCode.UNAUTHORIZED


async def test_an_expired_token_closes_with_4401(
    running: Running, bystander: CandidateClient
) -> None:
    expired, _ = running.hall.tokens.issue(
        subject="t-exam-00003", exam_id="t-exam", role="candidate", now=time.time() - 86400
    )
    received, close_code = await raw_exchange(
        running, wire.serialize(wire.Hello(1, expired, "main"))
    )
    assert only_error(received).code == "token_expired"
    assert close_code == wire.CloseCode.UNAUTHORIZED


async def test_an_unknown_part_closes_with_4403(running: Running) -> None:
    _, code = running._fresh_code("t-exam")
    token = (await sign_in(running.url, code))["token"]
    received, close_code = await raw_exchange(
        running, wire.serialize(wire.Hello(1, token, "aptitude"))
    )
    assert only_error(received).code == "unknown_part" and close_code == wire.CloseCode.FORBIDDEN


async def test_no_hello_in_time_closes_with_4408(start_server) -> None:  # type: ignore[no-untyped-def]
    running = await start_server(hello_timeout_s=0.3)
    received, close_code = await raw_exchange(running)
    assert only_error(received).code == "hello_timeout"
    assert close_code == wire.CloseCode.HELLO_TIMEOUT


async def test_an_item_not_on_the_form_is_refused_and_the_socket_stays(
    running: Running, bystander: CandidateClient
) -> None:
    client, _ = await running.candidate()
    form = await client.start("kk")
    on_form = {item.id for item in form.items}
    stranger = next(f"syn-{n:05d}" for n in range(1, 61) if f"syn-{n:05d}" not in on_form)
    with pytest.raises(ClientError) as refused:
        await client.answer(stranger, 0)
    assert refused.value.code == "unknown_item"
    client.next_seq -= 1  # the refused number was not used
    ack = await client.answer(form.items[0].id, 0)
    assert ack is not None and ack.seq == 1
    await client.close()


async def test_replayed_and_out_of_order_numbers(
    running: Running, bystander: CandidateClient
) -> None:
    client, _ = await running.candidate()
    form = await client.start("kk")
    first, second = form.items[0].id, form.items[1].id
    await client.answer(first, 1)
    client.next_seq = 1  # replay number 1 with other content
    with pytest.raises(ClientError) as replayed:
        await client.answer(second, 2)
    assert replayed.value.code == "seq_replayed"
    client.next_seq = 1  # the exact retry is acknowledged again, not stored twice
    assert await client.answer(first, 1) is not None
    client.next_seq = 5
    with pytest.raises(ClientError) as gap:
        await client.answer(second, 2)
    assert gap.value.code == "seq_gap" and "next expected is 2" in gap.value.message
    client.next_seq = 2
    assert await client.answer(second, 2) is not None
    welcome = await client.resume()
    assert welcome.next_seq == 3 and len(welcome.answers) == 2
    await client.close()


async def test_an_answer_after_the_deadline_is_refused_logged_and_closes_the_sitting(
    running: Running, bystander: CandidateClient
) -> None:
    client, _ = await running.candidate()
    form = await client.start("kk")
    await client.answer(form.items[0].id, 0)
    real_now = running.hall.now
    running.hall.now = lambda: real_now() + 91 * 60  # the timer has not fired yet
    try:
        with pytest.raises(ClientError) as refused:
            await client.answer(form.items[1].id, 0)
        assert refused.value.code == "too_late" and "after the deadline" in refused.value.message
        closed = await client.wait_closed()
    finally:
        running.hall.now = real_now
    assert closed.state == "expired" and closed.answered == 1
    assert client.close_code == wire.CloseCode.NORMAL
    kinds = _journal_kinds(running)
    refused_at = kinds.index("refused")
    assert kinds[refused_at : refused_at + 3] == ["refused", "expired", "result"]


def _journal_kinds(running: Running) -> list[str]:
    import sqlite3

    from engine.store.sqlite import SQLiteStore

    path = running.config.data_dir / SQLiteStore.FILE_NAME
    with sqlite3.connect(path) as connection:
        return [
            row[0]
            for row in connection.execute(
                "SELECT kind FROM journal WHERE sitting_id != '' ORDER BY seq"
            )
        ]


async def test_a_second_submit_finds_the_sitting_closed(
    running: Running, bystander: CandidateClient
) -> None:
    client, _ = await running.candidate()
    await client.start("ru")
    closed = await client.submit()
    assert closed.state == "submitted"
    again = CandidateClient(running.url, client.token, "main")
    with pytest.raises(ClientError) as refused:
        await again.connect()
    assert refused.value.close_code == wire.CloseCode.GONE
    assert again.view.closed is not None and again.view.closed.state == "submitted"
    assert _journal_kinds(running).count("submitted") == 1


async def test_a_second_connection_takes_over_and_the_first_is_told(
    running: Running, bystander: CandidateClient
) -> None:
    first, _ = await running.candidate()
    form = await first.start("ru")
    await first.answer(form.items[0].id, 1)
    second = CandidateClient(running.url, first.token, "main")
    welcome = await second.connect()
    assert welcome.state == "running" and welcome.next_seq == 2
    await first.wait_disconnected()
    assert first.close_code == wire.CloseCode.SUPERSEDED
    assert first.view.errors[-1].code == "superseded"
    second.next_seq = welcome.next_seq
    assert await second.answer(form.items[1].id, 0) is not None
    await second.close()
