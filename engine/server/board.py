"""The proctors' board: one tile per sitting, grouped by site, and the live feed to watchers.

Changes only mark a tile dirty; every half second each site with changes and watchers gets one
`feed` frame, encoded once, and the same bytes are offered to every watcher of that site. Each
watcher drains its own bounded queue in its own task, so a slow proctor delays nobody else: when
its queue overflows, the backlog is dropped and it gets one full feed instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from engine import wire
from engine.model import Candidate
from engine.sitting import Snapshot, State

log = logging.getLogger("examhall.board")

SiteKey = tuple[str, str]
"""(exam id, site id)."""

RECENT_S = 300.0
"""An irregularity this recent keeps the tile's attention raised."""


@dataclass
class TileState:
    """What the board knows of one sitting, live or not."""

    sitting: str
    exam: str
    candidate: Candidate
    part: str
    total: int
    time_limit_s: float
    state: str = State.SCHEDULED.value
    answered: int = 0
    deadline: float | None = None
    remaining_s: float = 0.0
    connected: bool = False
    last_seen: float | None = None
    identity: dict[str, Any] | None = None
    irregularities: int = 0
    last_irregularity: dict[str, Any] | None = None
    last_by_severity: dict[int, float] = field(default_factory=dict)
    """When an irregularity of each severity was last recorded."""
    lost_s: float = 0.0
    snapshot_at: float | None = None

    def apply_snapshot(
        self, snapshot: Snapshot, remaining_s: float, deadline: float | None
    ) -> None:
        self.state = snapshot.state.value
        self.deadline = deadline
        self.remaining_s = remaining_s
        self.lost_s = snapshot.lost_s
        if snapshot.identity_at is not None:
            self.identity = {"by": snapshot.identity_by, "at": snapshot.identity_at}

    def attention(self, now: float) -> int:
        """3: act now; 2: look soon; 1: running calmly; 0: nothing to do."""

        def recent(severity: int) -> bool:
            return any(
                now - at < RECENT_S
                for level, at in self.last_by_severity.items()
                if level >= severity
            )

        if self.state == State.RUNNING and (not self.connected or recent(3)):
            return 3
        if self.state == State.SCHEDULED and self.connected:
            return 2  # waiting for the proctor's identity check
        if self.state in (State.RUNNING, State.PAUSED) and (recent(1) or self.lost_s > 0):
            return 2
        if self.state in (State.RUNNING, State.PAUSED, State.CHECKED_IN):
            return 1
        return 0

    def to_wire(self, now: float) -> wire.Tile:
        if self.state == State.RUNNING and self.deadline is not None:
            remaining_ms = int(max(0.0, self.deadline - now) * 1000)
        else:
            remaining_ms = int(self.remaining_s * 1000)
        return wire.Tile(
            sitting=self.sitting,
            candidate=self.candidate.id,
            name=self.candidate.full_name,
            site=self.candidate.site_id,
            office=self.candidate.office,
            document=self.candidate.document,
            part=self.part,
            state=self.state,
            answered=self.answered,
            total=self.total,
            remaining_ms=remaining_ms,
            deadline=self.deadline,
            connected=self.connected,
            last_seen=self.last_seen,
            identity=self.identity,
            irregularities=self.irregularities,
            last_irregularity=self.last_irregularity,
            lost_s=round(self.lost_s, 3),
            snapshot_at=self.snapshot_at,
            attention=self.attention(now),
        )


class Watcher:
    """One proctor connection's outgoing side."""

    def __init__(
        self,
        send: Callable[[bytes], Awaitable[None]],
        full_feed: Callable[[], list[bytes]],
        *,
        limit: int = 32,
    ) -> None:
        self._send = send
        self._full_feed = full_feed
        self._queue: collections.deque[bytes] = collections.deque()
        self._limit = limit
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.resyncs = 0
        self.sent = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._drain())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def offer(self, frame: bytes) -> None:
        if len(self._queue) >= self._limit:
            self._queue.clear()
            self._queue.extend(self._full_feed())
            self.resyncs += 1
        else:
            self._queue.append(frame)
        self._wake.set()

    async def _drain(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                frame = self._queue.popleft()
                try:
                    await self._send(frame)
                except (ConnectionError, RuntimeError):
                    return
                self.sent += 1


@dataclass
class Board:
    now: Callable[[], float] = time.time
    tiles: dict[str, TileState] = field(default_factory=dict)
    sites: dict[SiteKey, list[str]] = field(default_factory=dict)
    watchers: dict[SiteKey, set[Watcher]] = field(default_factory=dict)
    dirty: dict[SiteKey, set[str]] = field(default_factory=dict)
    refresh: Callable[[], None] = lambda: None
    """Called before a frame is built: the hall brings its stale tiles up to date here."""

    def add(self, tile: TileState) -> None:
        self.tiles[tile.sitting] = tile
        self.sites.setdefault((tile.exam, tile.candidate.site_id), []).append(tile.sitting)

    def site_of(self, sitting_id: str) -> SiteKey | None:
        tile = self.tiles.get(sitting_id)
        return None if tile is None else (tile.exam, tile.candidate.site_id)

    def mark(self, tile: TileState) -> None:
        self.dirty.setdefault((tile.exam, tile.candidate.site_id), set()).add(tile.sitting)

    # -- frames ------------------------------------------------------------------------------

    def full_frame(self, key: SiteKey) -> bytes:
        self.refresh()
        now = self.now()
        tiles = [self.tiles[sitting_id].to_wire(now) for sitting_id in self.sites.get(key, [])]
        tiles.sort(key=lambda tile: -tile.attention)
        return wire.serialize(wire.Feed(key[1], True, now, tiles))

    def broadcast(self, key: SiteKey, frame: bytes) -> int:
        """Offer the same encoded bytes to every watcher of the site."""
        watchers = self.watchers.get(key, set())
        for watcher in watchers:
            watcher.offer(frame)
        return len(watchers)

    def flush(self) -> int:
        """One change frame per site with dirty tiles and watchers; returns frames encoded."""
        self.refresh()
        encoded = 0
        now = self.now()
        for key, sitting_ids in list(self.dirty.items()):
            if not sitting_ids:
                continue
            if self.watchers.get(key):
                tiles = [self.tiles[sitting_id].to_wire(now) for sitting_id in sitting_ids]
                self.broadcast(key, wire.serialize(wire.Feed(key[1], False, now, tiles)))
                encoded += 1
            sitting_ids.clear()
        return encoded

    def watch(self, keys: Iterable[SiteKey], watcher: Watcher) -> None:
        for key in keys:
            self.watchers.setdefault(key, set()).add(watcher)

    def unwatch(self, watcher: Watcher) -> None:
        for watchers in self.watchers.values():
            watchers.discard(watcher)

    async def run(self, interval_s: float = 0.5) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.flush()
            except Exception:
                log.exception("feed flush failed")
