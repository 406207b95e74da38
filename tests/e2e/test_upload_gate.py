"""Uploads wait while the node is behind: `503 busy` with `Retry-After`, nothing recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from engine.client import CandidateClient, upload_media
from engine.server import keys
from tests.e2e.conftest import Running

WEBM = b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


async def started(running: Running) -> tuple[CandidateClient, str]:
    client, _ = await running.candidate()
    await client.start("kk")
    return client, client.view.welcome.sitting  # type: ignore[union-attr]


async def health(session: aiohttp.ClientSession, running: Running) -> dict[str, Any]:
    async with session.get(f"{running.url}/api/v1/health") as response:
        return dict(await response.json())


async def post_once(
    session: aiohttp.ClientSession, client: CandidateClient, seq: int
) -> tuple[int, dict[str, Any], str | None]:
    async with session.post(
        f"{running_url(client)}/api/v1/media/{client.part}/chunk",
        params={"seq": str(seq)},
        data=WEBM,
        headers={"Authorization": f"Bearer {client.token}", "Content-Type": "video/webm"},
    ) as response:
        return response.status, dict(await response.json()), response.headers.get("Retry-After")


def running_url(client: CandidateClient) -> str:
    return client.base_url.rstrip("/")


async def test_an_upload_past_the_most_at_once_is_asked_to_come_back_and_nothing_is_lost(
    start_server: Any, session: aiohttp.ClientSession
) -> None:
    running: Running = await start_server(uploads_at_once=1)
    client, sitting = await started(running)
    host, port = running.server.host, running.server.port
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /api/v1/media/{client.part}/chunk?seq=1 HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {client.token}\r\nContent-Type: video/webm\r\n"
        f"Content-Length: {len(WEBM)}\r\n\r\n"
    )
    writer.write(head.encode() + WEBM[:100])  # the rest of its body is slow to come
    await writer.drain()
    while (await health(session, running))["uploads"]["under_way"] < 1:
        await asyncio.sleep(0.01)

    status, reply, retry_after = await post_once(session, client, 2)
    assert (status, reply["error"]) == (503, "busy")
    assert reply["message"].startswith("1 uploads are under way: send it again in")
    assert retry_after is not None and 5 <= int(retry_after) <= 15
    assert reply["retry_after"] == int(retry_after)

    writer.write(WEBM[100:])
    await writer.drain()
    first_reply = await reader.readuntil(b"\r\n\r\n")
    assert first_reply.startswith(b"HTTP/1.1 200"), "the upload under way is answered"
    writer.close()
    status, reply, _ = await post_once(session, client, 2)
    assert status == 200 and reply["seq"] == 2, "once the node has room, it is taken"

    records = await running.hall.media_records(sitting)
    assert [record.seq for record in records] == [1, 2]
    events = await running.hall.store.events_of(sitting)
    assert not [e for e in events if e["kind"] == "irregularity"], "waiting is no irregularity"
    assert (await health(session, running))["uploads"]["turned_away"] == {"many_under_way": 1}


async def test_uploads_wait_a_moment_after_the_loop_woke_late(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, _ = await running.candidate()
    form = await client.start("kk")
    gate = running.server.app[keys.UPLOAD_GATE]
    gate.calm_s = 0.5
    time.sleep(0.3)  # the event loop stands still, as under a long collection
    await asyncio.sleep(0.1)  # its lag is measured
    status, reply, retry_after = await post_once(session, client, 1)
    assert status == 503 and reply["message"].startswith("the server is behind with answers")
    assert retry_after is not None
    ack = await client.answer(form.items[0].id, 1)
    assert ack is not None and ack.seq == 1, "answers are never turned away"
    await asyncio.sleep(0.6)
    status, reply, _ = await post_once(session, client, 1)
    assert status == 200 and reply["seq"] == 1


async def test_the_client_library_comes_back_after_retry_after(
    running: Running, session: aiohttp.ClientSession
) -> None:
    client, sitting = await started(running)
    gate = running.server.app[keys.UPLOAD_GATE]
    gate.retry_after_s = (1, 1)
    gate.most_at_once = 0  # every upload waits…
    waiting = asyncio.create_task(
        upload_media(session, client.base_url, client.token, client.part, WEBM, "video/webm", seq=1)
    )
    await asyncio.sleep(0.3)
    assert gate.turned_away == {"many_under_way": 1} and not waiting.done()
    gate.most_at_once = 256  # …until the node has room
    reply = await asyncio.wait_for(waiting, timeout=5)
    assert reply["seq"] == 1
    (record,) = await running.hall.media_records(sitting)
    assert record.seq == 1
