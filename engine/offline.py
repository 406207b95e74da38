"""Offline writes to a data directory, never beside a running server.

The store's writer thread keeps the journal's head in memory, so two processes writing one
database would fork the hash chain. A data directory is therefore held by an exclusive lock
file (``examhall.lock``): the server takes it for its lifetime (`hold_data_dir`), and an
offline command that must write (a countersignature, an appeal decision, a confirmed
re-scoring) opens the store only if it can take the lock (`offline_store`); otherwise it says
the server is running and changes nothing. Commands that only read need no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from engine.exceptions import StoreError
from engine.store.sqlite import SQLiteStore

LOCK_FILE = "examhall.lock"


@dataclass
class DataDirLock:
    """An exclusive hold on a data directory; released by `release` or at process exit."""

    path: Path
    descriptor: int | None

    def release(self) -> None:
        if self.descriptor is not None:
            fcntl.flock(self.descriptor, fcntl.LOCK_UN)
            os.close(self.descriptor)
            self.descriptor = None


def hold_data_dir(data_dir: Path) -> DataDirLock:
    """Take the data directory's lock, or raise `StoreError` saying who may hold it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise StoreError(
            f"{data_dir} is in use by a running examhall server or another command; stop it "
            "first (read-only commands work meanwhile)"
        ) from None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    return DataDirLock(path, descriptor)


@contextlib.asynccontextmanager
async def offline_store(data_dir: Path) -> AsyncIterator[SQLiteStore]:
    """The data directory's store for an offline command, under the lock."""
    if not (data_dir / SQLiteStore.FILE_NAME).exists():
        raise StoreError(f"no database at {data_dir / SQLiteStore.FILE_NAME}")
    lock = hold_data_dir(data_dir)
    store = SQLiteStore(data_dir)
    try:
        await store.open()
        yield store
    finally:
        await store.close()
        lock.release()
