"""The stack's own ceiling: a bare aiohttp websocket answering each msgpack answer with an ack,
and a bare media endpoint acknowledging each uploaded chunk.

No parsing beyond msgpack, no state, no disk: what aiohttp, msgpack and the event loop can do on
this machine at this moment. The settings match the engine's candidate socket (no compression,
the same frame limit and heartbeat), so every engine figure has a fair denominator. Frames
other than answers (audio levels) are read and not answered, as the engine does; a chunk is
read whole and acknowledged with its number, size and SHA-256 (which the generator checks),
neither stored nor journaled, so an exam day with uploads has a ceiling under the same load.

    python -m bench.ceiling --port 8471
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from collections.abc import AsyncIterator

import msgpack
from aiohttp import WSMsgType, web

from engine.cli import BACKLOG
from engine.fixation import MAX_CHUNK_BYTES
from engine.server.tuning import collection_in_hand, new_event_loop
from engine.wire import MAX_FRAME_BYTES

HEARTBEAT_S = 20.0


async def echo_socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=HEARTBEAT_S, compress=False)
    await ws.prepare(request)
    async for frame in ws:
        if frame.type != WSMsgType.BINARY:
            break
        body = msgpack.unpackb(frame.data, raw=False)
        if body.get("t") != "answer":
            continue
        ack = {"t": "ack", "seq": body.get("seq"), "item": body.get("item")}
        await ws.send_bytes(msgpack.packb(ack, use_bin_type=True))
    return ws


async def chunk(request: web.Request) -> web.Response:
    """The engine's chunk acknowledgement (docs/protocol.md 6.3) for a body read whole."""
    data = await request.read()
    return web.json_response(
        {
            "seq": int(request.query.get("seq", "0")),
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "server_time": time.time(),
        }
    )


async def media_socket(request: web.Request) -> web.WebSocketResponse:
    """The engine's media socket (docs/protocol.md 6.4): hello, then each chunk acknowledged with
    number, size and SHA-256; levels are read and not answered, as the engine's."""
    ws = web.WebSocketResponse(max_msg_size=MAX_CHUNK_BYTES + 64 * 1024, compress=False)
    await ws.prepare(request)
    await ws.receive()  # hello
    ready = {"t": "media-ready", "max_chunk_bytes": MAX_CHUNK_BYTES, "max_snapshot_bytes": 0}
    await ws.send_bytes(msgpack.packb(ready, use_bin_type=True))
    async for message in ws:
        if message.type is not WSMsgType.BINARY:
            continue
        chunk = msgpack.unpackb(message.data, raw=False)
        if chunk.get("t") != "chunk":
            continue
        stored = {
            "t": "stored",
            "kind": "chunk",
            "seq": chunk.get("seq"),
            "sha256": hashlib.sha256(chunk["data"]).hexdigest(),
            "size": len(chunk["data"]),
            "server_time": time.time(),
        }
        await ws.send_bytes(msgpack.packb(stored, use_bin_type=True))
    return ws


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def collector(app: web.Application) -> AsyncIterator[None]:
    """The engine's collector handling while sittings run (engine/server/tuning.py): what
    start-up made frozen, no automatic collection, new objects frozen on allocations without a
    walk, a collection every five minutes. With Python's own collector the bare server's ack
    p99 at 10,000 connections with uploads was 1.4 s; the ceiling is the stack at its best."""
    async with collection_in_hand(quiet=lambda: False):
        yield


def create_app() -> web.Application:
    app = web.Application(client_max_size=MAX_CHUNK_BYTES + 64 * 1024)  # as the engine's
    app.router.add_get("/ws", echo_socket)
    app.router.add_post("/api/v1/media/{part}/chunk", chunk)
    app.router.add_get("/ws/media", media_socket)
    app.cleanup_ctx.append(collector)
    app.router.add_get("/api/v1/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    web.run_app(
        create_app(),
        host=args.host,
        port=args.port,
        print=None,
        shutdown_timeout=2,
        backlog=BACKLOG,
        loop=new_event_loop(),  # the engine's own loop choice and backlog: the same stack
    )


if __name__ == "__main__":
    main()
