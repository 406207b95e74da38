"""Copying the write-ahead log back into the database on a thread of its own.

In WAL mode every commit appends the pages it changed to the log, and a checkpoint copies them
back into the database file. SQLite's automatic checkpoint runs inside the commit that crosses
its threshold, on the writer thread, so that commit and every answer waiting behind it wait for
the copy and its fsync (a third of the writer's time in a closed loop of 1,000 sittings,
docs/performance.md). Here a second connection checkpoints in passive mode a few times a second:
SQLite does the copy with the GIL released and without blocking the writer, so it runs on the
other core. The writer keeps a larger automatic threshold (`WRITER_AUTOCHECKPOINT_PAGES`): its
own checkpoint then finds little left to copy, and completing one is what lets the next commit
start the log from its beginning again, so the file stays bounded.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

WRITER_AUTOCHECKPOINT_PAGES = 8000
"""The writer's own threshold (32 MiB of 4 KiB pages); SQLite's default is 1,000."""


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` every `every_s` until stopped."""

    def __init__(
        self,
        path: Path,
        connect: Callable[[Path], sqlite3.Connection],
        every_s: float = 0.1,
    ) -> None:
        self.path = path
        self.every_s = every_s
        self.checkpoints = 0
        self.busy_or_failed = 0
        self._connect = connect
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        connection = self._connect(self.path)
        self._thread = threading.Thread(
            target=self._run, args=(connection,), name="examhall-checkpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None

    def _run(self, connection: sqlite3.Connection) -> None:
        try:
            while not self._stop.wait(self.every_s):
                self.checkpoint_once(connection)
        finally:
            connection.close()

    def checkpoint_once(self, connection: sqlite3.Connection) -> None:
        """One passive checkpoint; a busy or failed one is counted and tried again later."""
        try:
            busy = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[0]
        except sqlite3.Error:
            busy = True
        if busy:
            self.busy_or_failed += 1
        else:
            self.checkpoints += 1
