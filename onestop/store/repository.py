"""The store: one transaction per engine command, and the queries the engine needs.

SQLite (the default) runs in WAL mode and takes its write lock when a command begins
(``BEGIN IMMEDIATE``), so commands from several processes on one file queue instead of
failing half-way. PostgreSQL needs nothing special: the dossier row is locked with
``SELECT ... FOR UPDATE`` and every write checks the row's version.

The statements an engine command runs are built once, here, with bound parameters:
building a statement costs several times more than executing it.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from sqlalchemy import (
    Connection,
    Engine as SqlEngine,
    Row,
    bindparam,
    create_engine,
    delete,
    event,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..errors import ConcurrentUpdate, StoreError
from ..model import Officer
from . import schema
from .schema import counters, dossiers, events, officer_roles, officers, specs, tasks

_TASK_COLUMNS = (tasks, dossiers.c.code.label("dossier_code"), dossiers.c.spec_id)
_OFFICER = (select(officers.c.id, officers.c.name, officer_roles.c.agency, officer_roles.c.role)
            .outerjoin(officer_roles, officer_roles.c.officer_id == officers.c.id)
            .where(officers.c.id == bindparam("officer")))
_TASK_WITH_DOSSIER = (select(tasks.c.id.label("task_id"), tasks.c.step, tasks.c.role,
                             tasks.c.agency, tasks.c.claimed_by, tasks.c.ready_at, dossiers)
                      .join(dossiers, dossiers.c.id == tasks.c.dossier_id)
                      .where(tasks.c.id == bindparam("task")))
_TASK = select(*_TASK_COLUMNS).join(dossiers, dossiers.c.id == tasks.c.dossier_id) \
    .where(tasks.c.id == bindparam("task"))
_OPEN_TASKS = (select(*_TASK_COLUMNS).join(dossiers, dossiers.c.id == tasks.c.dossier_id)
               .where(tasks.c.dossier_id == bindparam("dossier"))
               .order_by(tasks.c.ready_at, tasks.c.step))
_DOSSIER_BY_CODE = select(dossiers).where(dossiers.c.code == bindparam("code"))
_DELETE_TASK = delete(tasks).where(tasks.c.id == bindparam("task"))
_UPDATE_DOSSIER = (update(dossiers)
                   .where(dossiers.c.id == bindparam("dossier"),
                          dossiers.c.version == bindparam("expected"))
                   .values(status=bindparam("new_status"), state=bindparam("new_state"),
                           finished_at=bindparam("new_finished_at"),
                           version=bindparam("new_version")))
_INSERT_TASKS = insert(tasks)
_INSERT_EVENTS = insert(events)
_CLAIM = (update(tasks).where(tasks.c.id == bindparam("task"), tasks.c.claimed_by.is_(None))
          .values(claimed_by=bindparam("officer")))
_RELEASE = (update(tasks).where(tasks.c.id == bindparam("task"),
                                tasks.c.claimed_by == bindparam("officer"))
            .values(claimed_by=None))
_EVENTS = select(events).where(events.c.dossier_id == bindparam("dossier")).order_by(events.c.id)
_COUNTER = select(counters.c.value).where(counters.c.key == bindparam("key"))


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
        try:
            self._sql: SqlEngine = create_engine(self.url)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot use database {database!r}: {exc}") from None
        shown = self._sql.url.render_as_string(hide_password=True)
        if self._sql.dialect.name == "sqlite":
            target = self._sql.url.database
            if target and target != ":memory:" and not Path(target).parent.is_dir():
                raise StoreError(f"cannot open database {shown}: folder "
                                 f"{Path(target).parent} does not exist")
            _configure_sqlite(self._sql, durability)
        try:
            schema.metadata.create_all(self._sql)
        except SQLAlchemyError as exc:
            self._sql.dispose()
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"cannot open database {shown}: {reason}") from None
        self._locks = self._sql.dialect.name != "sqlite"

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
                yield Tx(conn, self._locks)

    @contextmanager
    def read(self) -> Iterator["Tx"]:
        """A read-only transaction."""
        with self._sql.connect() as conn:
            with conn.begin():
                yield Tx(conn, False)


def _configure_sqlite(sql: SqlEngine, durability: str) -> None:
    @event.listens_for(sql, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let the begin event below issue BEGIN itself (pysqlite's own is deferred).
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

    def __init__(self, conn: Connection, locks: bool) -> None:
        self.conn = conn
        self._locks = locks

    # -- specs ---------------------------------------------------------------------
    def ensure_spec(self, spec_hash: str, process_id: str, file: str, body: bytes,
                    at: datetime) -> int:
        """Store a model once; returns its id."""
        found = self.conn.execute(select(specs.c.id).where(specs.c.hash == spec_hash)).scalar()
        if found is not None:
            return int(found)
        result = self.conn.execute(insert(specs).values(hash=spec_hash, process_id=process_id,
                                                        file=file, body=body, loaded_at=at))
        return int(result.inserted_primary_key[0])

    def spec(self, spec_id: int) -> Row[Any] | None:
        return self.conn.execute(select(specs.c.hash, specs.c.body)
                                 .where(specs.c.id == spec_id)).first()

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
    def next_sequence(self, key: str) -> int:
        """Allocate the next number of a daily dossier counter."""
        query = _COUNTER.with_for_update() if self._locks else _COUNTER
        current = self.conn.execute(query, {"key": key}).scalar()
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

    def dossier(self, code: str) -> Row[Any] | None:
        return self.conn.execute(_DOSSIER_BY_CODE, {"code": code}).first()

    def update_dossier(self, dossier_id: int, version: int, *, status: int, state: bytes,
                       finished_at: datetime | None) -> int:
        """Write the dossier's progress if the row is still at ``version``; returns the
        new version."""
        result = self.conn.execute(_UPDATE_DOSSIER, {
            "dossier": dossier_id, "expected": version, "new_status": status,
            "new_state": state, "new_finished_at": finished_at, "new_version": version + 1})
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"dossier {dossier_id} was changed by another command; "
                                   f"retry")
        return version + 1

    # -- tasks ---------------------------------------------------------------------
    def insert_tasks(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.conn.execute(_INSERT_TASKS, list(rows))

    def task(self, task_id: str) -> Row[Any] | None:
        return self.conn.execute(_TASK, {"task": task_id}).first()

    def task_with_dossier(self, task_id: str) -> Row[Any] | None:
        """An open task and its dossier's row, the dossier locked for this transaction."""
        query = _TASK_WITH_DOSSIER.with_for_update(of=dossiers) if self._locks \
            else _TASK_WITH_DOSSIER
        return self.conn.execute(query, {"task": task_id}).first()

    def open_tasks(self, dossier_id: int) -> list[Row[Any]]:
        return list(self.conn.execute(_OPEN_TASKS, {"dossier": dossier_id}))

    def delete_task(self, task_id: str) -> None:
        self.conn.execute(_DELETE_TASK, {"task": task_id})

    def claim_task(self, task_id: str, officer_id: str) -> bool:
        """Claim an unclaimed open task; False when someone else holds it."""
        return self.conn.execute(_CLAIM, {"task": task_id, "officer": officer_id}).rowcount == 1

    def release_task(self, task_id: str, officer_id: str) -> bool:
        return self.conn.execute(_RELEASE, {"task": task_id, "officer": officer_id}).rowcount == 1

    def inbox(self, officer_id: str, pairs: Sequence[tuple[str, str]]) -> list[Row[Any]]:
        if not pairs:
            return []
        query = (select(*_TASK_COLUMNS)
                 .join(dossiers, dossiers.c.id == tasks.c.dossier_id)
                 .where(tuple_(tasks.c.agency, tasks.c.role).in_(list(pairs)),
                        (tasks.c.claimed_by.is_(None)) | (tasks.c.claimed_by == officer_id))
                 .order_by(tasks.c.ready_at, dossiers.c.code))
        return list(self.conn.execute(query))

    # -- events --------------------------------------------------------------------
    def append_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.conn.execute(_INSERT_EVENTS, list(rows))

    def events(self, dossier_id: int) -> list[Row[Any]]:
        return list(self.conn.execute(_EVENTS, {"dossier": dossier_id}))
