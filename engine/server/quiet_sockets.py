"""Closing media sockets that went quiet, with one timer for all of them.

A timeout on every `receive` cost about a fifth of the loop's time per media frame (a timer
made, moved and cancelled each time, py-spy at exam day 5,000); a sweep every few seconds
over when each socket last sent something costs nearly nothing and closes the same sockets,
a few seconds later.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web

from engine import wire


@dataclass
class QuietSockets:
    quiet_s: float = 60.0
    """A socket that sent nothing for this long is closed (4411)."""
    last_heard: dict[web.WebSocketResponse, float] = field(default_factory=dict)

    def heard(self, ws: web.WebSocketResponse) -> None:
        self.last_heard[ws] = time.monotonic()

    def forget(self, ws: web.WebSocketResponse) -> None:
        self.last_heard.pop(ws, None)

    async def sweep(self) -> int:
        """Close every socket quiet for `quiet_s`; returns how many."""
        now = time.monotonic()
        quiet = [ws for ws, at in self.last_heard.items() if now - at > self.quiet_s]
        for ws in quiet:
            self.forget(ws)
            await ws.close(code=wire.CloseCode.IDLE, message=b"idle")
        return len(quiet)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(min(10.0, self.quiet_s / 4))
            await self.sweep()
