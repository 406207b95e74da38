"""The media socket: chunks and stills stored as over HTTP, refusals that keep it open, and bad
frames, tokens and closed sittings that close it with the code docs/protocol.md 6.4 names.

Every test runs twice: against the serving process's own `/ws/media`, and against the media
process (engine/server/media_process.py) at the address the sign-in names."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import msgpack
import pytest
from websockets.asyncio.client import connect

from engine import wire
from engine.client import CandidateClient, ClientError, MediaSocket
from engine.fixation import MAX_CHUNK_BYTES, sha256_hex, stored_bytes
from engine.server import keys
from tests.e2e.conftest import Running

WEBM = b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8
JPEG = b"\xff\xd8\xff\xe0" + bytes(100)


MEDIA_URLS: weakref.WeakKeyDictionary[CandidateClient, str] = weakref.WeakKeyDictionary()
"""Each candidate's media socket address, as its sign-in named it."""


@pytest.fixture(params=["in the serving process", "in the media process"])
async def running(
    request: pytest.FixtureRequest, start_server: Callable[..., Awaitable[Running]]
) -> Running:
    if request.param == "in the media process":
        return await start_server(media_port=0)
    return await start_server()


async def started(running: Running) -> tuple[CandidateClient, str]:
    client, signed = await running.candidate()
    MEDIA_URLS[client] = signed["media_socket"]
    await client.start("kk")
    return client, client.view.welcome.sitting  # type: ignore[union-attr]


@pytest.fixture
async def sockets() -> AsyncIterator[list[MediaSocket]]:
    opened: list[MediaSocket] = []
    yield opened
    for socket in opened:
        await socket.close()


async def media_of(client: CandidateClient, sockets: list[MediaSocket]) -> MediaSocket:
    url = MEDIA_URLS[client]
    socket = MediaSocket(client.base_url, client.token, client.part, url=url, busy_retries=0)
    sockets.append(socket)
    await socket.connect()
    return socket


async def closed_with(socket: MediaSocket, frame: bytes | str) -> ClientError:
    """Send `frame` and return the refusal the socket closed with."""
    await socket.send_raw(frame)
    with pytest.raises(ClientError) as refused:
        await socket.reply()
    return refused.value


async def irregularities(running: Running, sitting: str) -> list[str]:
    events = await running.hall.store.events_of(sitting)
    return [e["data"]["kind"] for e in events if e["kind"] == "irregularity"]


async def test_chunks_and_stills_are_stored_as_over_http(
    running: Running, sockets: list[MediaSocket]
) -> None:
    client, sitting = await started(running)
    socket = await media_of(client, sockets)
    assert socket.ready is not None and socket.ready.max_chunk_bytes == MAX_CHUNK_BYTES

    first = await socket.send_chunk(1, WEBM, "video/webm;codecs=vp8,opus", client_time=100.5)
    second = await socket.send_chunk(2, b"next bytes", "video/webm")
    still = await socket.send_snapshot(JPEG, "image/jpeg")
    again = await socket.send_chunk(2, b"next bytes", "video/webm")

    assert (first.kind, first.seq, first.size, first.sha256) == (
        "chunk",
        1,
        len(WEBM),
        sha256_hex(WEBM),
    )
    assert (still.kind, still.seq, still.ref) == ("snapshot", 1, 1)
    assert again == second, "the same chunk again is acknowledged with its first record"
    records = await running.hall.media_records(sitting)
    assert [(r.kind.value, r.seq, r.media_type) for r in records] == [
        ("chunk", 1, "video/webm"),
        ("chunk", 2, "video/webm"),
        ("snapshot", 1, "image/jpeg"),
    ]
    assert records[0].client_time == 100.5
    assert [stored_bytes(running.config.data_dir, r) for r in records] == [
        WEBM,
        b"next bytes",
        JPEG,
    ]


async def test_a_refused_upload_is_noted_and_the_socket_goes_on(
    running: Running, sockets: list[MediaSocket]
) -> None:
    client, sitting = await started(running)
    socket = await media_of(client, sockets)
    refusals = []
    for seq, data, media_type in [
        (1, b"not a webm stream", "video/webm"),
        (1, WEBM, "text/plain"),
        (0, WEBM, "video/webm"),
    ]:
        with pytest.raises(ClientError) as refused:
            await socket.send_chunk(seq, data, media_type)
        refusals.append(refused.value.code)
    await socket.send_chunk(1, WEBM, "video/webm")
    with pytest.raises(ClientError) as clash:
        await socket.send_chunk(1, WEBM + b"!", "video/webm")
    with pytest.raises(ClientError) as too_large:
        await socket.send_chunk(2, bytes(MAX_CHUNK_BYTES + 1), "video/webm")
    stored = await socket.send_chunk(2, b"after all that", "video/webm")

    assert refusals == ["bad_media", "bad_media", "bad_seq"]
    assert (clash.value.code, too_large.value.code) == ("duplicate_chunk", "chunk_too_large")
    assert stored.seq == 2 and socket.close_code is None
    async with aiohttp.ClientSession() as http, http.get(f"{running.url}/api/v1/health") as reply:
        assert (await reply.json())["media_sockets"] == 1
    assert [r.seq for r in await running.hall.media_records(sitting)] == [1, 2]
    assert await irregularities(running, sitting) == [
        "media-bad",
        "media-bad",
        "media-duplicate",
        "media-oversized",
    ]


async def test_levels_sent_here_reach_the_detectors_and_a_bad_frame_closes_nothing(
    running: Running, sockets: list[MediaSocket]
) -> None:
    """The page sends its microphone levels on the media socket while it is open: the detectors
    run where the socket is served, and what they find is noted on the sitting."""
    client, sitting = await started(running)
    socket = await media_of(client, sockets)
    await socket.send_levels(time.time(), 100, [0.01] * 50)
    speech = [0.01] * 10 + [0.3, 0.25, 0.0, 0.35] * 8 + [0.01] * 8
    await socket.send_levels(time.time(), 100, speech)
    await socket.send_raw(
        wire.serialize(wire.Levels(time.time(), 100, [0.0] * (wire.MAX_LEVELS_PER_FRAME + 1)))
    )
    stored = await socket.send_chunk(1, WEBM, "video/webm")

    assert stored.seq == 1 and socket.close_code is None
    assert [(e.code, e.fatal) for e in socket.errors] == [("bad_levels", False)]
    for _ in range(100):
        noted = [
            e["data"]
            for e in await running.hall.store.events_of(sitting)
            if e["kind"] == "irregularity"
        ]
        if noted:
            break
        await asyncio.sleep(0.05)
    assert [(n["kind"], n["source"]) for n in noted] == [("talk", "talk")]
    assert "3.2 s" in noted[0]["detail"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\xc1", "malformed"),
        ("a text frame", "text_frame"),
        (wire.serialize(wire.Ping(1)), "unknown_type"),
        (
            msgpack.packb({"t": "chunk", "seq": 1, "type": "video/webm", "data": "text"}),
            "bad_field",
        ),
        (wire.serialize(wire.Hello(wire.PROTOCOL_VERSION, "t", "main")), "hello_twice"),
    ],
)
async def test_a_bad_frame_closes_the_socket_and_the_server_goes_on(
    running: Running, sockets: list[MediaSocket], frame: bytes | str, code: str
) -> None:
    client, sitting = await started(running)
    socket = await media_of(client, sockets)
    refused = await closed_with(socket, frame)
    assert (refused.code, refused.close_code) == (code, wire.CloseCode.PROTOCOL)
    other = await media_of(client, sockets)
    assert (await other.send_chunk(1, WEBM, "video/webm")).seq == 1
    assert [r.seq for r in await running.hall.media_records(sitting)] == [1]


async def test_a_frame_over_the_limit_closes_with_1009(
    running: Running, sockets: list[MediaSocket]
) -> None:
    client, _ = await started(running)
    socket = await media_of(client, sockets)
    chunk = wire.Chunk(1, "video/webm", bytes(wire.MAX_MEDIA_FRAME_BYTES + 1))
    with pytest.raises(ClientError):
        await socket.send_raw(wire.serialize(chunk))
        await socket.reply()
    assert socket.close_code == wire.CloseCode.TOO_BIG


@pytest.mark.parametrize(
    ("hello", "code", "close_code"),
    [
        (lambda token: wire.Hello(wire.PROTOCOL_VERSION, "forged", "main"), "bad_token", 4401),
        (lambda token: wire.Hello(wire.PROTOCOL_VERSION, token, "nope"), "unknown_part", 4403),
        (lambda token: wire.Hello(99, token, "main"), "unsupported_version", 4426),
        (lambda token: wire.Chunk(1, "video/webm", WEBM), "hello_first", 4400),
    ],
)
async def test_a_socket_without_a_valid_hello_is_refused(
    running: Running, hello: Any, code: str, close_code: int
) -> None:
    client, _ = await started(running)
    url = MEDIA_URLS[client]
    async with connect(url, compression=None) as ws:
        await ws.send(wire.serialize(hello(client.token)))
        reply = wire.parse(await ws.recv(), max_bytes=wire.MAX_SERVER_FRAME_BYTES)
        await ws.wait_closed()
    assert isinstance(reply, wire.Error) and (reply.code, reply.fatal) == (code, True)
    assert ws.close_code == close_code


async def test_a_closed_sitting_takes_no_more_media(
    running: Running, sockets: list[MediaSocket]
) -> None:
    client, sitting = await started(running)
    socket = await media_of(client, sockets)
    await socket.send_chunk(1, WEBM, "video/webm")
    await client.submit()

    with pytest.raises(ClientError) as after_submit:
        await socket.send_chunk(2, b"the recorder's tail", "video/webm")
    assert (after_submit.value.code, after_submit.value.close_code) == ("sitting_closed", 4410)
    with pytest.raises(ClientError) as reopened:
        await media_of(client, sockets)
    assert (reopened.value.code, reopened.value.close_code) == ("sitting_closed", 4410)
    assert [r.seq for r in await running.hall.media_records(sitting)] == [1]


async def test_a_token_replaced_by_a_new_code_closes_the_socket_at_its_next_upload(
    running: Running, sockets: list[MediaSocket]
) -> None:
    client, sitting = await started(running)
    socket = await media_of(client, sockets)
    await socket.send_chunk(1, WEBM, "video/webm")
    claims = running.hall.tokens.verify(client.token, role="candidate")
    running.hall.tokens.replace_before(claims.exam_id, claims.subject, time.time() + 1)

    with pytest.raises(ClientError) as refused:
        await socket.send_chunk(2, b"from the old laptop", "video/webm")
    assert (refused.value.code, refused.value.close_code) == ("token_replaced", 4401)
    assert [r.seq for r in await running.hall.media_records(sitting)] == [1]


async def test_a_busy_node_holds_the_upload_until_it_has_room_and_refuses_nothing(
    running: Running, sockets: list[MediaSocket]
) -> None:
    client, sitting = await started(running)
    socket = await media_of(client, sockets)
    gate = running.app[keys.UPLOAD_GATE]
    gate.most_at_once = 0  # no room…

    live = running.hall.live[sitting]
    live.media_last_at = running.hall.now() - 60  # the last upload stored a minute ago
    waiting = asyncio.create_task(socket.send_chunk(1, WEBM, "video/webm"))
    await asyncio.sleep(0.4)
    assert not waiting.done() and gate.holding == 1
    assert await running.hall.media_records(sitting) == []
    await running.hall.watch_health()
    assert "media-stalled" not in await irregularities(running, sitting), (
        "an upload the node holds is no stalled recording"
    )
    ack = await client.answer(client.view.form.items[0].id, 1)  # type: ignore[union-attr]
    assert ack is not None, "answers are never held"
    gate.most_at_once = 256  # …until the node has room
    stored = await asyncio.wait_for(waiting, timeout=5)
    assert stored.seq == 1 and gate.held == 1 and gate.turned_away == {}
    assert [r.seq for r in await running.hall.media_records(sitting)] == [1]
    assert await irregularities(running, sitting) == [], "waiting is no irregularity"


async def test_an_upload_whose_page_gave_up_waiting_is_not_taken_when_its_turn_comes(
    running: Running, sockets: list[MediaSocket]
) -> None:
    client, sitting = await started(running)
    socket = await media_of(client, sockets)
    gate = running.app[keys.UPLOAD_GATE]
    gate.most_at_once = 0
    await socket.send_raw(wire.serialize(wire.Chunk(1, "video/webm", WEBM)))
    while gate.holding == 0:
        await asyncio.sleep(0.01)
    await socket.close()  # the page's patience ran out: it sends the chunk again elsewhere
    link = running.app.get(keys.MEDIA_LINK)
    while link is not None and link.sockets:
        await asyncio.sleep(0.01)  # the media process said the socket left
    gate.most_at_once = 256
    while gate.holding:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    assert await running.hall.media_records(sitting) == []


async def test_a_quiet_socket_is_closed_and_a_new_one_goes_on(
    start_server: Any, sockets: list[MediaSocket]
) -> None:
    running: Running = await start_server(media_quiet_s=0.4)
    client, sitting = await started(running)
    socket = await media_of(client, sockets)
    await socket.send_chunk(1, WEBM, "video/webm")
    with pytest.raises(ClientError):
        await socket.reply()
    assert socket.close_code == wire.CloseCode.IDLE
    again = await media_of(client, sockets)
    assert (await again.send_chunk(2, b"later", "video/webm")).seq == 2
    assert (await socket.send_chunk(3, b"on the first", "video/webm")).seq == 3, (
        "the client library opens a socket closed as quiet again, as the page does"
    )
    assert [r.seq for r in await running.hall.media_records(sitting)] == [1, 2, 3]


async def test_a_socket_that_keeps_sending_is_never_closed_as_quiet(
    start_server: Any, sockets: list[MediaSocket]
) -> None:
    running: Running = await start_server(media_quiet_s=0.4)
    client, sitting = await started(running)
    socket = await media_of(client, sockets)
    for seq in range(1, 9):  # 1.6 s in all, four times the quiet limit
        await socket.send_chunk(seq, WEBM if seq == 1 else b"more", "video/webm")
        await asyncio.sleep(0.2)
    assert socket.close_code is None
    assert len(await running.hall.media_records(sitting)) == 8
