"""Persistence behind one interface (:class:`~onestop.store.rows.Store` and its
:class:`~onestop.store.rows.Unit`): the SQL store (SQLite, PostgreSQL) and the in-memory
store, chosen by the database URL."""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidInput
from .memory import SCHEME as MEMORY_SCHEME
from .memory import MemoryStore
from .rows import (
    DossierRow,
    EventQuery,
    EventRow,
    OpenTaskRow,
    SpecRow,
    Store,
    TaskRow,
    TimerRow,
    Unit,
)
from .sql import SqlStore, checked_database, normalise_url

__all__ = ["DossierRow", "EventQuery", "EventRow", "MemoryStore", "OpenTaskRow", "SpecRow",
           "SqlStore", "Store", "TaskRow", "TimerRow", "Unit", "normalise_url", "open_store"]


def open_store(database: str | os.PathLike[str], *, durability: str = "full",
               lock_timeout: float = 30.0) -> Store:
    """The store a database names: ``memory://NAME`` (or ``memory://``) in memory; a
    SQLAlchemy URL or a file path (SQLite) in SQL, its schema upgraded on open."""
    text = checked_database(database)
    if durability not in ("full", "normal"):
        raise InvalidInput(f"durability is 'full' (fsync every commit) or 'normal', "
                           f"not {durability!r}")
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)) \
            or not 0 <= lock_timeout <= 3600:
        raise InvalidInput(f"lock_timeout is the seconds a command waits for another "
                           f"one's lock (0 to 3600), not {lock_timeout!r}")
    store: Any
    if text.startswith(MEMORY_SCHEME):
        store = MemoryStore(text, lock_timeout=lock_timeout)
    else:
        store = SqlStore(text, durability=durability, lock_timeout=lock_timeout)
    return store
