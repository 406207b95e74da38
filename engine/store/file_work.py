"""File work done before a job joins a group commit, on threads of its own.

A media chunk must be on disk (hashed, written and fsynced) before the commit that records it.
Done on the writer thread, every answer in that commit would wait for the chunk's fsync; done
through `asyncio.to_thread`, every chunk would cost the event loop one more wake-up and future.
Here a few threads take the file work from a queue and put the job that follows into the
writer's queue themselves, so the caller's future is resolved once, with the commit.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Then = TypeVar("Then")

FILE_THREADS = 2
"""Two, so one upload's fsync need not wait for another's; more only add threads taking turns
at the GIL around every system call (1,000 uploads a second need a quarter of one)."""


class FileWorkers(Generic[Then]):
    """Runs each submitted `work()`, then `hand_on(then)` or `fail(then, error)`."""

    def __init__(
        self,
        hand_on: Callable[[Then], None],
        fail: Callable[[Then, Exception], None],
        threads: int = FILE_THREADS,
    ) -> None:
        self._hand_on = hand_on
        self._fail = fail
        self._count = threads
        self._queue: queue.SimpleQueue[tuple[Callable[[], object], Then] | None]
        self._queue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._run, name=f"examhall-files-{n}", daemon=True)
            for n in range(self._count)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, work: Callable[[], object], then: Then) -> None:
        self._queue.put((work, then))

    def stop(self) -> None:
        """Finish everything submitted so far (it is handed on), then end the threads."""
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._threads = []

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            work, then = item
            try:
                work()
            except Exception as error:
                self._fail(then, error)
            else:
                self._hand_on(then)
