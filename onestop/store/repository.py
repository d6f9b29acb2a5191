"""The store: one transaction per engine command, and the queries the engine needs.

SQLite (the default) runs in WAL mode and takes its write lock when a command begins
(``BEGIN IMMEDIATE``), so commands from several processes on one file queue instead of
failing half-way. PostgreSQL needs nothing special: the dossier row is locked with
``SELECT ... FOR UPDATE`` and every write checks the row's version.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Any, Iterator, Mapping, Sequence

from sqlalchemy import (
    Connection,
    Engine as SqlEngine,
    Row,
    create_engine,
    event,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError

from ..errors import ConcurrentUpdate
from ..model import Officer
from . import schema
from .schema import counters, dossiers, events, officer_roles, officers, specs, tasks

OPEN_STATES = ("ready", "claimed")


def normalise_url(database: str) -> str:
    """Accept a SQLAlchemy URL or a plain file path (taken as SQLite)."""
    if "://" in database:
        return database
    return f"sqlite:///{database}"


class Store:
    """Owns the SQLAlchemy engine and hands out transactions."""

    def __init__(self, database: str, *, durability: str = "full") -> None:
        if durability not in ("full", "normal"):
            raise ValueError("durability is 'full' (fsync every commit) or 'normal'")
        self.url = normalise_url(database)
        self._sql: SqlEngine = create_engine(self.url, future=True)
        if self._sql.dialect.name == "sqlite":
            _configure_sqlite(self._sql, durability)
        schema.metadata.create_all(self._sql)

    @property
    def dialect(self) -> str:
        return self._sql.dialect.name

    def close(self) -> None:
        self._sql.dispose()

    @contextmanager
    def write(self) -> Iterator["Tx"]:
        """A read-write transaction: committed if the block succeeds, else rolled back."""
        with self._sql.connect().execution_options(onestop_write=True) as conn:
            with conn.begin():
                yield Tx(conn)

    @contextmanager
    def read(self) -> Iterator["Tx"]:
        """A read-only transaction."""
        with self._sql.connect() as conn:
            with conn.begin():
                yield Tx(conn)


def _configure_sqlite(sql: SqlEngine, durability: str) -> None:
    @event.listens_for(sql, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(sql, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("onestop_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


class Tx:
    """The store's operations inside one transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- specs ---------------------------------------------------------------------
    def ensure_spec(self, spec_hash: str, process_id: str, file: str, body: bytes,
                    at: datetime) -> bool:
        """Store a model once; returns True when it was new."""
        found = self.conn.execute(select(specs.c.hash).where(specs.c.hash == spec_hash)).first()
        if found is not None:
            return False
        self.conn.execute(insert(specs).values(hash=spec_hash, process_id=process_id,
                                               file=file, body=body, loaded_at=at))
        return True

    def spec_body(self, spec_hash: str) -> bytes | None:
        return self.conn.execute(select(specs.c.body).where(specs.c.hash == spec_hash)).scalar()

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
        row = self.conn.execute(select(officers).where(officers.c.id == officer_id)).first()
        if row is None:
            return None
        roles: dict[str, set[str]] = {}
        for agency, role in self.conn.execute(
                select(officer_roles.c.agency, officer_roles.c.role)
                .where(officer_roles.c.officer_id == officer_id)):
            roles.setdefault(agency, set()).add(role)
        return Officer(row.id, row.name, {a: frozenset(r) for a, r in roles.items()})

    # -- dossiers ------------------------------------------------------------------
    def next_sequence(self, key: str) -> int:
        """Allocate the next number of a daily dossier counter."""
        current = self.conn.execute(
            select(counters.c.value).where(counters.c.key == key).with_for_update()).scalar()
        if current is None:
            self.conn.execute(insert(counters).values(key=key, value=1))
            return 1
        self.conn.execute(update(counters).where(counters.c.key == key)
                          .values(value=current + 1))
        return int(current) + 1

    def insert_dossier(self, values: Mapping[str, Any]) -> int:
        try:
            result = self.conn.execute(insert(dossiers).values(**values, version=1))
        except IntegrityError as exc:
            raise ConcurrentUpdate(f"dossier code {values.get('code')} already exists") from exc
        return int(result.inserted_primary_key[0])

    def dossier(self, code: str, *, lock: bool = False) -> Row[Any] | None:
        query = select(dossiers).where(dossiers.c.code == code)
        if lock:
            query = query.with_for_update()
        return self.conn.execute(query).first()

    def dossier_by_id(self, dossier_id: int, *, lock: bool = False) -> Row[Any] | None:
        query = select(dossiers).where(dossiers.c.id == dossier_id)
        if lock:
            query = query.with_for_update()
        return self.conn.execute(query).first()

    def update_dossier(self, dossier_id: int, version: int, values: Mapping[str, Any]) -> int:
        """Write ``values`` if the row is still at ``version``; returns the new version."""
        result = self.conn.execute(
            update(dossiers)
            .where(dossiers.c.id == dossier_id, dossiers.c.version == version)
            .values(**values, version=version + 1))
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"dossier {dossier_id} was changed by another command; "
                                   f"retry")
        return version + 1

    # -- tasks ---------------------------------------------------------------------
    def insert_tasks(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert(tasks), list(rows))

    def task(self, task_id: str, *, lock: bool = False) -> Row[Any] | None:
        query = (select(tasks, dossiers.c.code.label("dossier_code"),
                        dossiers.c.spec_hash.label("spec_hash"))
                 .join(dossiers, dossiers.c.id == tasks.c.dossier_id)
                 .where(tasks.c.id == task_id))
        if lock:
            query = query.with_for_update(of=tasks)
        return self.conn.execute(query).first()

    def open_tasks(self, dossier_id: int) -> list[Row[Any]]:
        query = (select(tasks, dossiers.c.code.label("dossier_code"),
                        dossiers.c.spec_hash.label("spec_hash"))
                 .join(dossiers, dossiers.c.id == tasks.c.dossier_id)
                 .where(tasks.c.dossier_id == dossier_id, tasks.c.state.in_(OPEN_STATES))
                 .order_by(tasks.c.ready_at, tasks.c.step))
        return list(self.conn.execute(query))

    def close_task(self, task_id: str, state: str, at: datetime, by: str | None) -> None:
        self.conn.execute(update(tasks).where(tasks.c.id == task_id)
                          .values(state=state, closed_at=at, closed_by=by))

    def claim_task(self, task_id: str, officer_id: str) -> bool:
        """Claim an unclaimed open task; False when someone else holds it."""
        result = self.conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.state == "ready", tasks.c.claimed_by.is_(None))
            .values(state="claimed", claimed_by=officer_id))
        return result.rowcount == 1

    def release_task(self, task_id: str, officer_id: str) -> bool:
        result = self.conn.execute(
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.state == "claimed",
                   tasks.c.claimed_by == officer_id)
            .values(state="ready", claimed_by=None))
        return result.rowcount == 1

    def inbox(self, officer_id: str, pairs: Sequence[tuple[str, str]]) -> list[Row[Any]]:
        if not pairs:
            return []
        query = (select(tasks, dossiers.c.code.label("dossier_code"),
                        dossiers.c.spec_hash.label("spec_hash"))
                 .join(dossiers, dossiers.c.id == tasks.c.dossier_id)
                 .where(tuple_(tasks.c.agency, tasks.c.role).in_(list(pairs)),
                        tasks.c.state.in_(OPEN_STATES),
                        (tasks.c.claimed_by.is_(None)) | (tasks.c.claimed_by == officer_id))
                 .order_by(tasks.c.ready_at, dossiers.c.code))
        return list(self.conn.execute(query))

    # -- events --------------------------------------------------------------------
    def append_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert(events), list(rows))

    def events(self, dossier_id: int) -> list[Row[Any]]:
        return list(self.conn.execute(
            select(events).where(events.c.dossier_id == dossier_id).order_by(events.c.id)))
