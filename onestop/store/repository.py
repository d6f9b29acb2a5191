"""The store: one transaction per engine command, and the queries the engine needs.

SQLite (the default) runs in WAL mode and takes its write lock when a command begins
(``BEGIN IMMEDIATE``), so commands from several processes on one file queue instead of
failing half-way. PostgreSQL needs nothing special: the dossier row is locked with
``SELECT ... FOR UPDATE`` and every write checks the row's version.

The statements an engine command runs are built once, here, with bound parameters:
building a statement costs several times more than executing it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Sequence

from sqlalchemy import (
    Connection,
    Engine as SqlEngine,
    Row,
    bindparam,
    create_engine,
    event,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..errors import InvalidInput, StoreError
from ..model import Officer
from . import schema
from .hotpath import HotPath
from .schema import dossiers, events, officer_roles, officers, specs, tasks, timers

_TASK_COLUMNS = (tasks, dossiers.c.code.label("dossier_code"), dossiers.c.spec_id)
_OFFICER = (select(officers.c.id, officers.c.name, officer_roles.c.agency, officer_roles.c.role)
            .outerjoin(officer_roles, officer_roles.c.officer_id == officers.c.id)
            .where(officers.c.id == bindparam("officer")))
_TASK = select(*_TASK_COLUMNS).join(dossiers, dossiers.c.id == tasks.c.dossier_id) \
    .where(tasks.c.id == bindparam("task"))
_OPEN_TASKS = (select(*_TASK_COLUMNS).join(dossiers, dossiers.c.id == tasks.c.dossier_id)
               .where(tasks.c.dossier_id == bindparam("dossier"))
               .order_by(tasks.c.ready_at, tasks.c.step))
_DOSSIER_BY_CODE = select(dossiers).where(dossiers.c.code == bindparam("code"))
_EVENTS = select(events).where(events.c.dossier_id == bindparam("dossier")).order_by(events.c.id)


def normalise_url(database: str) -> str:
    """Accept a SQLAlchemy URL or a plain file path (taken as SQLite)."""
    if "://" in database:
        return database
    return f"sqlite:///{database}"


class Store:
    """Owns the SQLAlchemy engine and hands out transactions."""

    def __init__(self, database: str | os.PathLike[str], *, durability: str = "full",
                 lock_timeout: float = 30.0) -> None:
        if not isinstance(database, (str, os.PathLike)) or not str(database).strip() \
                or "\x00" in str(database):
            raise InvalidInput(f"database must be a SQLAlchemy URL or a file path, not "
                               f"{database!r}")
        if durability not in ("full", "normal"):
            raise InvalidInput(f"durability is 'full' (fsync every commit) or 'normal', "
                               f"not {durability!r}")
        if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, (int, float)) \
                or not 0 <= lock_timeout <= 3600:
            raise InvalidInput(f"lock_timeout is the seconds a command waits for another "
                               f"one's lock (0 to 3600), not {lock_timeout!r}")
        database = str(database)
        try:
            database.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("database path holds a lone surrogate (broken UTF-16), which "
                               "is not text") from None
        self.url = normalise_url(database)
        try:
            self._sql: SqlEngine = create_engine(self.url)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(_cannot_use(self.url, exc)) from None
        shown = self._sql.url.render_as_string(hide_password=True)
        if self._sql.dialect.name == "sqlite":
            target = self._sql.url.database
            if target and target.startswith("file:"):      # a URI filename (?mode=ro, ...)
                target = target[5:].split("?", 1)[0]
            if target and target != ":memory:" and not Path(target).parent.is_dir():
                raise StoreError(f"cannot open database {shown}: folder "
                                 f"{Path(target).parent} does not exist")
            _configure_sqlite(self._sql, durability, lock_timeout)
        elif self._sql.dialect.name == "postgresql":
            _configure_postgres(self._sql, lock_timeout)
        failures: tuple[type[BaseException], ...] = (SQLAlchemyError, *_driver_errors(self._sql))
        try:
            # One engine at a time creates the tables: SQLite takes its write lock first,
            # PostgreSQL a transaction-scoped advisory lock.
            with self._sql.connect().execution_options(onestop_write=True) as conn:
                with conn.begin():
                    if self._sql.dialect.name == "postgresql":
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                     {"key": _SCHEMA_LOCK})
                    schema.metadata.create_all(conn)
        except failures as exc:
            self._sql.dispose()
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"cannot open database {shown}: {reason}") from None
        self._locks = self._sql.dialect.name != "sqlite"
        self._sqlite = self._sql.dialect.name == "sqlite"
        self._shown = shown

    @property
    def dialect(self) -> str:
        return self._sql.dialect.name

    def close(self) -> None:
        self._sql.dispose()

    @contextmanager
    def write(self) -> Iterator["Tx"]:
        """A read-write transaction: committed if the block succeeds, else rolled back.
        A database failure (locked, full, read-only, unreachable) is a
        :class:`StoreError` and nothing is stored."""
        with self._translated("nothing was stored"):
            with self._sql.connect().execution_options(onestop_write=True) as conn:
                with conn.begin():
                    yield Tx(conn, self._locks)

    @contextmanager
    def command(self) -> Iterator[HotPath]:
        """A read-write transaction for an engine command, on the plain-SQL path.

        A database failure (a lock held too long, a lost connection) rolls the command
        back and is raised as :class:`StoreError`."""
        database_error = _driver_errors(self._sql)
        try:
            raw = self._sql.raw_connection()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot reach the database: {getattr(exc, 'orig', exc)}") \
                from None
        try:
            driver = raw.driver_connection
            assert driver is not None
            if self._sqlite:
                driver.execute("BEGIN IMMEDIATE")
            try:
                yield HotPath(driver, self._sql.dialect.name)
            except BaseException:
                raw.rollback()
                raise
            raw.commit()
        except database_error as exc:
            raise StoreError(f"database error, nothing was stored: {exc}") from None
        finally:
            raw.close()

    @contextmanager
    def read(self) -> Iterator["Tx"]:
        """A read-only transaction; a database failure is a :class:`StoreError`."""
        with self._translated("nothing was read"):
            with self._sql.connect() as conn:
                with conn.begin():
                    yield Tx(conn, False)

    @contextmanager
    def _translated(self, outcome: str) -> Iterator[None]:
        database_error = _driver_errors(self._sql)
        try:
            yield
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"database {self._shown}: {reason}; {outcome}") from None
        except database_error as exc:
            raise StoreError(f"database {self._shown}: {exc}; {outcome}") from None


#: The advisory lock key under which engines create the tables ("onestop" in ASCII).
_SCHEMA_LOCK = 0x6F6E6573746F70


def _driver_errors(sql: SqlEngine) -> tuple[type[BaseException], ...]:
    """The database driver's own error classes (a failure below SQLAlchemy)."""
    error = getattr(sql.dialect.dbapi, "Error", None)
    return (error,) if isinstance(error, type) and issubclass(error, BaseException) else ()


def _cannot_use(url: str, exc: Exception) -> str:
    """Why a database URL cannot be used, never showing its password; for PostgreSQL,
    how to get the driver or write the URL."""
    from sqlalchemy.engine import make_url

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        shown = url.split("://", 1)[0] + "://..."
    if url.startswith("postgres") and (isinstance(exc, ImportError)
                                       or not url.startswith("postgresql")):
        problem = f"{exc}; write"
        if isinstance(exc, ImportError):
            problem = (f"PostgreSQL needs the psycopg driver ({exc}); install it with "
                       f"pip install 'onestop[postgres]' and write")
        return (f"cannot use database {shown}: {problem} the URL as "
                f"postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE")
    return f"cannot use database {shown}: {exc}"


def _configure_postgres(sql: SqlEngine, lock_timeout: float) -> None:
    @event.listens_for(sql, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # A command waits at most this long for another one's row lock (PostgreSQL's 0
        # would mean for ever: the shortest wait is a millisecond).
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET lock_timeout = {max(1, int(lock_timeout * 1000))}")
        cursor.close()
        dbapi_connection.commit()


def _configure_sqlite(sql: SqlEngine, durability: str, lock_timeout: float) -> None:
    @event.listens_for(sql, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let the begin event below issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
        cursor.close()

    @event.listens_for(sql, "begin")
    def _on_begin(conn: Connection) -> None:
        # Straight to the driver: this runs once per command, on the hot path.
        immediate = conn.get_execution_options().get("onestop_write")
        driver = conn.connection.dbapi_connection
        assert driver is not None
        driver.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Tx:
    """The store's operations inside one transaction."""

    def __init__(self, conn: Connection, locks: bool) -> None:
        self.conn = conn
        self._locks = locks


    # -- specs ---------------------------------------------------------------------
    def ensure_spec(self, spec_hash: str, process_id: str, file: str, body: bytes,
                    at: datetime) -> int:
        """Store a model once; returns its id."""
        query = select(specs.c.id).where(specs.c.hash == spec_hash)
        found = self.conn.execute(query).scalar()
        if found is not None:
            return int(found)
        try:
            # Another engine starting at the same moment may store the same model first.
            with self.conn.begin_nested():
                result = self.conn.execute(insert(specs).values(
                    hash=spec_hash, process_id=process_id, file=file, body=body,
                    loaded_at=at))
        except IntegrityError:
            found = self.conn.execute(query).scalar()
            if found is None:
                raise
            return int(found)
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    def spec(self, spec_id: int) -> tuple[str, bytes] | None:
        row = self.conn.execute(select(specs.c.hash, specs.c.body)
                                .where(specs.c.id == spec_id)).first()
        return (row.hash, bytes(row.body)) if row is not None else None

    # -- officers ------------------------------------------------------------------
    def put_officer(self, officer: Officer) -> None:
        exists = self.conn.execute(
            select(officers.c.id).where(officers.c.id == officer.id)).first()
        if exists is None:
            self.conn.execute(insert(officers).values(id=officer.id, name=officer.name))
        else:
            self.conn.execute(update(officers).where(officers.c.id == officer.id)
                              .values(name=officer.name))
        self.conn.execute(officer_roles.delete().where(officer_roles.c.officer_id == officer.id))
        rows = [{"officer_id": officer.id, "agency": agency, "role": role}
                for agency, roles in officer.roles.items() for role in sorted(roles)]
        if rows:
            self.conn.execute(insert(officer_roles), rows)

    def officer(self, officer_id: str) -> Officer | None:
        rows = self.conn.execute(_OFFICER, {"officer": officer_id}).all()
        if not rows:
            return None
        roles: dict[str, set[str]] = {}
        for row in rows:
            if row.agency is not None:
                roles.setdefault(row.agency, set()).add(row.role)
        return Officer(rows[0].id, rows[0].name, {a: frozenset(r) for a, r in roles.items()})

    # -- dossiers ------------------------------------------------------------------
    def dossier(self, code: str) -> Row[Any] | None:
        return self.conn.execute(_DOSSIER_BY_CODE, {"code": code}).first()

    # -- tasks ---------------------------------------------------------------------
    def task(self, task_id: str) -> Row[Any] | None:
        return self.conn.execute(_TASK, {"task": task_id}).first()

    def open_tasks(self, dossier_id: int) -> list[Row[Any]]:
        return list(self.conn.execute(_OPEN_TASKS, {"dossier": dossier_id}))

    def inbox(self, officer_id: str, pairs: Sequence[tuple[str, str]]) -> list[Row[Any]]:
        if not pairs:
            return []
        query = (select(*_TASK_COLUMNS)
                 .join(dossiers, dossiers.c.id == tasks.c.dossier_id)
                 .where(tuple_(tasks.c.agency, tasks.c.role).in_(list(pairs)),
                        (tasks.c.claimed_by.is_(None)) | (tasks.c.claimed_by == officer_id))
                 .order_by(tasks.c.ready_at, dossiers.c.code))
        return list(self.conn.execute(query))

    # -- timers --------------------------------------------------------------------
    def due_timers(self, now: datetime, after: tuple[datetime, str] | None,
                   batch: int) -> list[Row[Any]]:
        """Timers due by ``now``, in (due, id) order, after the key ``after``: read
        through the index on the due instant."""
        query = select(timers.c.id, timers.c.dossier_id, timers.c.step, timers.c.due_at) \
            .where(timers.c.due_at.is_not(None), timers.c.due_at <= now)
        if after is not None:
            last_due, last_id = after
            query = query.where((timers.c.due_at > last_due)
                                | ((timers.c.due_at == last_due) & (timers.c.id > last_id)))
        return list(self.conn.execute(query.order_by(timers.c.due_at, timers.c.id)
                                      .limit(batch)))

    # -- events --------------------------------------------------------------------
    def events(self, dossier_id: int) -> list[Row[Any]]:
        return list(self.conn.execute(_EVENTS, {"dossier": dossier_id}))
