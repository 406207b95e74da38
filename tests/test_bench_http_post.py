"""The benchmark's lean HTTP client against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bench.http_post import KeepAlivePool


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    peer = request.transport.get_extra_info("peername") if request.transport else None
    await asyncio.sleep(float(request.query.get("wait", "0")))
    return web.json_response(
        {
            "size": len(body),
            "type": request.headers.get("Content-Type"),
            "query": dict(request.query),
            "client_port": peer[1] if peer else None,
        }
    )


async def chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=201)
    response.enable_chunked_encoding()
    await response.prepare(request)
    for piece in (b"first,", b"second,", b"third"):
        await response.write(piece)
    await response.write_eof()
    return response


async def closing(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"bye": True}, status=410, headers={"Connection": "close"})


@pytest.fixture
async def server() -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_post("/chunked", chunked)
    app.router.add_post("/close", closing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = site._server.sockets  # type: ignore[union-attr]
    yield sockets[0].getsockname()[1]
    await runner.cleanup()


async def test_uploads_one_after_another_share_one_connection(server: int) -> None:
    pool = KeepAlivePool("127.0.0.1", server, limit=10)
    replies = []
    for n in range(5):
        status, body = await pool.post(
            f"/echo?seq={n}", {"Content-Type": "video/webm"}, bytes(1000 + n)
        )
        assert status == 200
        replies.append(json.loads(body))
    assert [r["size"] for r in replies] == [1000, 1001, 1002, 1003, 1004]
    assert replies[4] == {**replies[4], "type": "video/webm", "query": {"seq": "4"}}
    assert len({r["client_port"] for r in replies}) == 1 and pool.opened == 1
    await pool.close()


async def test_concurrent_uploads_open_at_most_the_limit(server: int) -> None:
    pool = KeepAlivePool("127.0.0.1", server, limit=3)
    posts = [pool.post("/echo?wait=0.05", {}, b"x") for _ in range(12)]
    replies = [json.loads(body) for _, body in await asyncio.gather(*posts)]
    assert len(replies) == 12
    assert len({r["client_port"] for r in replies}) == 3 and pool.opened == 3
    await pool.close()


async def test_a_chunked_reply_is_read_whole(server: int) -> None:
    pool = KeepAlivePool("127.0.0.1", server, limit=1)
    assert await pool.post("/chunked", {}, b"") == (201, b"first,second,third")
    status, _ = await pool.post("/echo", {}, b"after")
    assert status == 200, "the connection is still usable after a chunked reply"
    await pool.close()


async def test_a_connection_the_server_closes_is_not_reused(server: int) -> None:
    pool = KeepAlivePool("127.0.0.1", server, limit=1)
    status, body = await pool.post("/close", {}, b"")
    assert (status, json.loads(body)) == (410, {"bye": True})
    assert pool.opened == 0
    status, _ = await pool.post("/echo", {}, b"again")
    assert status == 200 and pool.opened == 1
    await pool.close()
