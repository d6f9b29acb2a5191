"""Persistence behind one interface (:class:`~onestop.store.rows.Store` and its
:class:`~onestop.store.rows.Unit`): the SQL store (SQLite, PostgreSQL) and the in-memory
store, chosen by the database URL."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InvalidInput
from .memory import SCHEME as MEMORY_SCHEME
from .memory import MemoryStore
from .rows import (
    DossierQuery,
    DossierRow,
    EventQuery,
    EventRow,
    OpenTaskRow,
    OutboxRow,
    SpecRow,
    Store,
    TaskRow,
    TimerRow,
    Unit,
)
from .sql import SqlStore, checked_database, normalise_url

__all__ = ["DossierQuery", "DossierRow", "EventQuery", "EventRow", "MemoryStore",
           "OpenTaskRow", "OutboxRow", "SpecRow", "SqlStore", "Store", "TaskRow", "TimerRow",
           "Unit", "normalise_url", "open_store", "schema_revision", "upgrade_schema"]


def open_store(database: str | os.PathLike[str] | Store, *, durability: str = "full",
               lock_timeout: float = 30.0) -> Store:
    """The store a database names: ``memory://NAME`` (or ``memory://``) in memory; a
    SQLAlchemy URL or a file path (SQLite) in SQL, its schema upgraded on open. A store
    already opened is returned as it is."""
    if isinstance(database, (SqlStore, MemoryStore)):
        return database
    text = checked_database(database)
    if durability not in ("full", "normal"):
        raise InvalidInput(f"durability is 'full' (fsync every commit) or 'normal', "
                           f"not {durability!r}")
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)) \
            or not 0 <= lock_timeout <= 3600:
        raise InvalidInput(f"lock_timeout is the seconds a command waits for another "
                           f"one's lock (0 to 3600), not {lock_timeout!r}")
    if text.startswith(MEMORY_SCHEME):
        return MemoryStore(text, lock_timeout=lock_timeout)
    return SqlStore(text, durability=durability, lock_timeout=lock_timeout)


def upgrade_schema(database: str | os.PathLike[str]) -> tuple[str | None, str]:
    """Bring a SQL database's schema to the newest revision, as opening an engine does;
    returns the revisions before (None: no onestop tables yet) and after."""
    store = _sql_only(database, upgrade=True)
    store.close()
    after = store.upgraded[1]
    assert after is not None
    return store.upgraded[0], after


def schema_revision(database: str | os.PathLike[str]) -> tuple[str | None, str]:
    """The schema revision a SQL database is at (None: no onestop tables), and the
    newest this release knows; the database is left as it is."""
    from .migrate import HEAD

    url = normalise_url(checked_database(database))
    if url.startswith("sqlite:///") and "mode=" not in url:
        path = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        if str(path) not in ("", ":memory:") and not path.is_file():
            raise InvalidInput(f"{path}: no such database file")
    store = _sql_only(database, upgrade=False)
    try:
        return store.revision(), HEAD
    finally:
        store.close()


def _sql_only(database: str | os.PathLike[str], *, upgrade: bool) -> SqlStore:
    text = checked_database(database)
    if text.startswith(MEMORY_SCHEME):
        raise InvalidInput(f"{text} is an in-memory store: it has no schema to show or "
                           f"upgrade")
    return SqlStore(text, upgrade=upgrade)
