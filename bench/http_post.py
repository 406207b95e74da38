"""A lean HTTP/1.1 POST over keep-alive connections, for the generator's media uploads.

The generator speaks the socket protocol with bare msgpack dicts so that its own cost stays
below the server's; `aiohttp`'s client cost the generator about 440 µs of CPU per upload
(exam day 5,000, 2026-11-24), more than the server spent on it, on the two cores both share.
This writes the request in one buffer and reads a `Content-Length` (or chunked) reply: nothing
else of HTTP is needed against the engine's media endpoints.
"""

from __future__ import annotations

import asyncio


class HttpError(Exception):
    """The reply could not be read as HTTP/1.1."""


class KeepAlivePool:
    """Up to `limit` keep-alive connections to one server, opened as uploads need them."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host = host
        self.port = port
        self.limit = limit
        self.opened = 0
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._returned = asyncio.Condition()

    async def post(self, target: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        """POST `body` to `target` (path and query); the reply's status and body."""
        reader, writer = await self._connection()
        lines = [f"POST {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            status, keep_alive, reply = await _read_reply(reader)
        except BaseException:
            await self._discard(writer)
            raise
        if keep_alive:
            async with self._returned:
                self._idle.append((reader, writer))
                self._returned.notify()
        else:
            await self._discard(writer)
        return status, reply

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self._returned:
            while not self._idle and self.opened >= self.limit:
                await self._returned.wait()
            if self._idle:
                return self._idle.pop()
            self.opened += 1
        try:
            return await asyncio.open_connection(self.host, self.port)
        except BaseException:
            await self._discard(None)
            raise

    async def _discard(self, writer: asyncio.StreamWriter | None) -> None:
        if writer is not None:
            writer.close()
        async with self._returned:
            self.opened -= 1
            self._returned.notify()


async def _read_reply(reader: asyncio.StreamReader) -> tuple[int, bool, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
        raise HttpError(f"not an HTTP/1.1 status line: {status_line!r}")
    headers = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        body = await _read_chunked(reader)
    else:
        raise HttpError("a reply without Content-Length or chunked encoding")
    keep_alive = headers.get("connection", "").lower() != "close"
    return int(rest[:3]), keep_alive, body


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
