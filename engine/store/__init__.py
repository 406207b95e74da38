"""Persistence: the `Store` interface and its embedded SQLite adapter."""

from engine.store.base import Redemption, Store, StoredSitting
from engine.store.sqlite import SQLiteStore

__all__ = ["Redemption", "SQLiteStore", "Store", "StoredSitting"]
