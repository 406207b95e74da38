"""What the serving process and its media process say to each other, over the child's pipes.

Every message is a msgpack array whose first element names it. The media process
(engine/server/media_process.py) writes to its stdout and reads its stdin; the serving process
(engine/server/media_link.py) the other way round. A request carries an id that its reply
repeats, so replies may come in any order.

From the media process:
  [READY, port]                                   listening; pages may connect
  [GREET, id, token, part]                        a media socket said hello
  [PLACE, id, handle, kind, seq, media_type, client_time, size, segment, offset, digest]
                                                  an upload is appended and synced: record it
  [UNFIT, id, handle, kind, seq, status, code, message, finding_code, finding_text, severity]
                                                  an upload refused for its bytes (nothing written)
  [FOUND, handle, source, kind, detail, severity] a detector found this in the socket's levels:
                                                  note it on the sitting (no reply)
  [LEAVE, handle]                                 that socket closed
  [STATS, {...}]                                  counters, about once a second
From the serving process:
  [GREETED, id, handle]
  [STORED, id, seq, sha256, size, server_time]
  [REFUSED, id, status, code, message]            the upload is refused; the socket stays open
  [FATAL, id, code, message, close_code]          close the socket with this code
  [DROPPED, id]                                   not taken: its socket closed while it waited
  [STOP]                                          close every socket, finish, exit
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgpack

READY = "ready"
GREET = "greet"
PLACE = "place"
UNFIT = "unfit"
FOUND = "found"
LEAVE = "leave"
STATS = "stats"
GREETED = "greeted"
STORED = "stored"
REFUSED = "refused"
FATAL = "fatal"
DROPPED = "dropped"
STOP = "stop"

REPLIES = frozenset({GREETED, STORED, REFUSED, FATAL, DROPPED})


class Pipe:
    """One direction out, one in. What is sent in one turn of the event loop goes in one write."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._unsent: list[bytes] = []
        self._packer = msgpack.Packer(use_bin_type=True)

    def send(self, message: list[Any]) -> None:
        if not self._unsent:
            asyncio.get_running_loop().call_soon(self._flush)
        self._unsent.append(self._packer.pack(message))

    def _flush(self) -> None:
        unsent, self._unsent = self._unsent, []
        if not self.writer.is_closing():
            self.writer.write(b"".join(unsent))

    async def messages(self) -> AsyncIterator[list[Any]]:
        """Every message read, until the other side closes its end."""
        unpacker = msgpack.Unpacker(raw=False, max_buffer_size=1 << 24)
        while data := await self.reader.read(1 << 16):
            unpacker.feed(data)
            for message in unpacker:
                if isinstance(message, list) and message and isinstance(message[0], str):
                    yield message

    def close(self) -> None:
        self._flush()
        self.writer.close()
