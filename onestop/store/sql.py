"""The SQL store: SQLite (the default) and PostgreSQL, on one write path.

Every unit of work runs on a DBAPI connection checked out of SQLAlchemy's pool (so the
same connection settings apply) with explicit BEGIN/COMMIT: through SQLAlchemy Core each
statement carries ~100 µs of Python overhead, which for a seven-step dossier adds up to
more than the database work itself (see bench/engine.py). The statements are written once
here from the schema's column lists, with ``?`` placeholders turned into the driver's
parameter style once per statement.

SQLite runs in WAL mode and a command takes the write lock when it begins (``BEGIN
IMMEDIATE``), so commands from several processes on one file queue instead of failing
half-way. On PostgreSQL a command locks the dossier row first (``SELECT ... FOR UPDATE``)
and only then touches its tasks and timers, so commands on one dossier queue, never
deadlock; every write of the dossier checks its version. A database failure — locked past
``lock_timeout``, full, read-only, unreachable — is a :class:`~onestop.errors.StoreError`
and nothing of the unit is stored.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ..errors import ConcurrentUpdate, InvalidInput, StoreError
from ..model import Officer
from . import migrate
from .rows import (
    DOSSIER_COLUMNS,
    DOSSIER_INSTANTS,
    FACT_COLUMNS,
    DossierQuery,
    DossierRow,
    EventQuery,
    EventRow,
    FeedbackRow,
    OpenTaskRow,
    OutboxRow,
    SpecRow,
    TaskRow,
    TimerRow,
)
from .schema import dossiers, events, tasks, timers
from .schema import from_micros as instant
from .schema import to_micros as micros


def normalise_url(database: str) -> str:
    """Accept a SQLAlchemy URL or a plain file path (taken as SQLite)."""
    if "://" in database:
        return database
    return f"sqlite:///{database}"


def _columns(table: Any, skip: tuple[str, ...] = ()) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if c.name not in skip)


_D = ", ".join(f"d.{c}" for c in DOSSIER_COLUMNS)
_TASK = ("t.id", "t.step", "t.role", "t.agency", "t.claimed_by", "t.ready_at", "t.due_at")
_OPEN = ("SELECT " + ", ".join(_TASK) + ", d.code, d.spec_id FROM onestop_tasks t "
         "JOIN onestop_dossiers d ON d.id = t.dossier_id ")
_EVENT_COLUMNS = _columns(events, ("id",))
_INSERT_DOSSIER_COLUMNS = _columns(dossiers, ("id",))


def _insert(table: str, columns: Sequence[str], returning: str = "") -> str:
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            f"({', '.join('?' for _ in columns)})" + (f" RETURNING {returning}" if returning
                                                     else ""))


S = {
    "task_for": ("SELECT " + ", ".join(_TASK) + f", {_D}, o.id, r.role FROM onestop_tasks t"
                 " JOIN onestop_dossiers d ON d.id = t.dossier_id"
                 " LEFT JOIN onestop_officers o ON o.id = ?"
                 " LEFT JOIN onestop_officer_roles r ON r.officer_id = ? AND r.agency = t.agency"
                 " AND r.role = t.role WHERE t.id = ?"),
    "lock_task_dossier": ("SELECT id FROM onestop_dossiers WHERE id = "
                          "(SELECT dossier_id FROM onestop_tasks WHERE id = ?) FOR UPDATE"),
    "dossier_by_id": f"SELECT {_D} FROM onestop_dossiers d WHERE d.id = ?",
    "dossier_by_code": f"SELECT {_D} FROM onestop_dossiers d WHERE d.code = ?",
    "update_dossier": ("UPDATE onestop_dossiers SET status = ?, state = ?, finished_at = ?, "
                       "appointment_at = ?, paused_at = ?, version = ? "
                       "WHERE id = ? AND version = ?"),
    "insert_dossier": _insert("onestop_dossiers", _INSERT_DOSSIER_COLUMNS, "id"),
    "insert_event": _insert("onestop_events", _EVENT_COLUMNS),
    "insert_task": _insert("onestop_tasks", _columns(tasks)),
    "insert_timer": _insert("onestop_timers", _columns(timers)),
    "delete_task": "DELETE FROM onestop_tasks WHERE id = ?",
    # The task an officer completes: still open, and not claimed by someone else meanwhile.
    "take_task": ("DELETE FROM onestop_tasks WHERE id = ? AND (claimed_by IS NULL "
                  "OR claimed_by = ?)"),
    "claim": "UPDATE onestop_tasks SET claimed_by = ? WHERE id = ? AND claimed_by IS NULL",
    "release": "UPDATE onestop_tasks SET claimed_by = NULL WHERE id = ? AND claimed_by = ?",
    "assign_held": "UPDATE onestop_tasks SET claimed_by = ? WHERE id = ? AND claimed_by = ?",
    "open_tasks": _OPEN + "WHERE t.dossier_id = ? ORDER BY t.ready_at, t.step, t.id",
    "task": _OPEN + "WHERE t.id = ?",
    "delete_timer": "DELETE FROM onestop_timers WHERE id = ?",
    # A timer is taken only if it is still due at the instant it is taken: a command may
    # have suspended (NULL) or moved it since a sweep read it.
    "take_timer": ("DELETE FROM onestop_timers WHERE id = ? AND due_at IS NOT NULL "
                   "AND due_at <= ? RETURNING due_at"),
    "reschedule_timer": "UPDATE onestop_timers SET due_at = ? WHERE id = ?",
    "next_timer": "SELECT MIN(due_at) FROM onestop_timers WHERE due_at IS NOT NULL",
    "events": ("SELECT e.id, e.dossier_id, d.code, d.procedure, e.at, e.kind, e.step, "
               "e.actor, e.agency, e.detail, e.version FROM onestop_events e "
               "JOIN onestop_dossiers d ON d.id = e.dossier_id "),
    "officer": ("SELECT o.id, o.name, r.agency, r.role FROM onestop_officers o "
                "LEFT JOIN onestop_officer_roles r ON r.officer_id = o.id WHERE o.id = ?"),
    "officer_exists": "SELECT 1 FROM onestop_officers WHERE id = ?",
    "insert_officer": "INSERT INTO onestop_officers (id, name) VALUES (?, ?)",
    "update_officer": "UPDATE onestop_officers SET name = ? WHERE id = ?",
    "delete_roles": "DELETE FROM onestop_officer_roles WHERE officer_id = ?",
    "insert_role": ("INSERT INTO onestop_officer_roles (officer_id, agency, role) "
                    "VALUES (?, ?, ?)"),
    "spec": "SELECT hash, body, dictionary FROM onestop_specs WHERE id = ?",
    "insert_outbox": _insert("onestop_outbox", ("dossier_id", "key", "kind", "status", "at",
                                                "payload")),
    "outbox": ("SELECT o.id, o.key, d.code, o.kind, o.status, o.at, o.payload, o.sent_at "
               "FROM onestop_outbox o JOIN onestop_dossiers d ON d.id = o.dossier_id "
               "WHERE o.sent_at IS NULL AND o.id > ? ORDER BY o.id LIMIT ?"),
    "mark_sent": "UPDATE onestop_outbox SET sent_at = ? WHERE key = ? AND sent_at IS NULL",
    "update_facts": ("UPDATE onestop_dossiers SET "
                     + ", ".join(f"{c} = ?" for c in FACT_COLUMNS) + " WHERE id = ?"),
    "stale_facts": ("SELECT id FROM onestop_dossiers WHERE facts_version < ? AND id > ? "
                    "ORDER BY id LIMIT ?"),
    "feedback": ("SELECT dossier_id, number, kind, received_at, due_at, answered_at, rating "
                 "FROM onestop_feedback WHERE dossier_id = ? ORDER BY number"),
    "insert_feedback": _insert("onestop_feedback", ("dossier_id", "number", "kind",
                                                    "received_at", "due_at")),
    "answer_feedback": ("UPDATE onestop_feedback SET answered_at = ? "
                        "WHERE dossier_id = ? AND number = ?"),
    "rate_feedback": ("UPDATE onestop_feedback SET rating = ? "
                      "WHERE dossier_id = ? AND number = ?"),
    "spec_by_hash": "SELECT id FROM onestop_specs WHERE hash = ?",
    "insert_spec": ("INSERT INTO onestop_specs (hash, process_id, file, body, loaded_at, "
                    "dictionary) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (hash) DO NOTHING"),
    "next_counter": ("INSERT INTO onestop_counters (key, value) VALUES (?, 1) "
                     "ON CONFLICT (key) DO UPDATE SET value = onestop_counters.value + 1 "
                     "RETURNING value"),
}


#: JSON as the store keeps it: readable UTF-8, compact (one encoder for every value).
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json(value: Any) -> str | None:
    return None if value is None else _JSON(value)


def _at(value: Any) -> datetime:
    """A stored instant that cannot be missing."""
    found = instant(value)
    if found is None:
        raise ValueError("a required instant is missing from the store")
    return found


def _dossier(values: Sequence[Any], offset: int = 0) -> dict[str, Any]:
    raw = dict(zip(DOSSIER_COLUMNS, values[offset:offset + len(DOSSIER_COLUMNS)],
                   strict=True))
    for name in DOSSIER_INSTANTS:
        raw[name] = _at(raw[name]) if name == "received_at" else instant(raw[name])
    raw["info"] = json.loads(raw["info"])
    raw["state"] = bytes(raw["state"]) if raw["state"] is not None else None
    return raw


def _open_task(row: Sequence[Any]) -> OpenTaskRow:
    return OpenTaskRow(row[0], row[1], row[2], row[3], row[4], _at(row[5]), instant(row[6]),
                       row[7], row[8])


def _event(row: Sequence[Any]) -> EventRow:
    return EventRow(row[0], row[1], row[2], row[3], _at(row[4]), row[5], row[6], row[7],
                    row[8], json.loads(row[9]) if row[9] else None, row[10])


class SqlUnit:
    """One transaction on one DBAPI connection (see :class:`~onestop.store.rows.Unit`)."""

    def __init__(self, connection: Any, statements: Mapping[str, str], postgres: bool,
                 lock: bool) -> None:
        self._cursor = connection.cursor()
        self._s = statements
        self._postgres = postgres
        self._lock = lock and postgres

    def _run(self, name: str, params: Sequence[Any]) -> Any:
        self._cursor.execute(self._s[name], params)
        return self._cursor

    def _raw(self, statement: str, params: Sequence[Any]) -> Any:
        self._cursor.execute(statement.replace("?", "%s") if self._postgres else statement,
                             params)
        return self._cursor

    # -- reads -------------------------------------------------------------------------
    def officer(self, officer_id: str) -> Officer | None:
        rows = self._run("officer", (officer_id,)).fetchall()
        if not rows:
            return None
        roles: dict[str, set[str]] = {}
        for _id, _name, agency, role in rows:
            if agency is not None:
                roles.setdefault(agency, set()).add(role)
        return Officer(rows[0][0], rows[0][1], {a: frozenset(r) for a, r in roles.items()})

    def dossier(self, code: str) -> DossierRow | None:
        row = self._run("dossier_by_code", (code,)).fetchone()
        return DossierRow(_dossier(row)) if row is not None else None

    def dossier_by_id(self, dossier_id: int) -> DossierRow | None:
        statement = "dossier_by_id_lock" if self._lock else "dossier_by_id"
        row = self._run(statement, (dossier_id,)).fetchone()
        return DossierRow(_dossier(row)) if row is not None else None

    def task_for(self, task_id: str, officer_id: str) -> TaskRow | None:
        if self._lock:
            # The dossier first, always: then its tasks cannot change under us.
            self._run("lock_task_dossier", (task_id,))
        row = self._run("task_for", (officer_id, officer_id, task_id)).fetchone()
        if row is None:
            return None
        values = _dossier(row, 7)
        values.update(task_id=row[0], step=row[1], role=row[2], agency=row[3],
                      claimed_by=row[4], ready_at=_at(row[5]), task_due_at=instant(row[6]),
                      officer_id=row[-2], held_role=row[-1])
        return TaskRow(values)

    def task(self, task_id: str) -> OpenTaskRow | None:
        row = self._run("task", (task_id,)).fetchone()
        return _open_task(row) if row is not None else None

    def open_tasks(self, dossier_id: int) -> list[OpenTaskRow]:
        return [_open_task(r) for r in self._run("open_tasks", (dossier_id,)).fetchall()]

    def inbox(self, officer_id: str, pairs: Sequence[tuple[str, str]]) -> list[OpenTaskRow]:
        if not pairs:
            return []
        wanted = " OR ".join("(t.agency = ? AND t.role = ?)" for _ in pairs)
        statement = (_OPEN + f"WHERE ({wanted}) AND (t.claimed_by IS NULL OR t.claimed_by = ?)"
                     " ORDER BY t.ready_at, d.code, t.id")
        params = [value for pair in pairs for value in pair] + [officer_id]
        return [_open_task(r) for r in self._raw(statement, params).fetchall()]

    def events(self, dossier_id: int) -> list[EventRow]:
        return self.event_stream(EventQuery(dossier_id=dossier_id, limit=0))

    def event_stream(self, query: EventQuery) -> list[EventRow]:
        where, params = ["e.id > ?"], list[Any]([query.after])
        if query.dossier_id is not None:
            where.append("e.dossier_id = ?")
            params.append(query.dossier_id)
        if query.kinds:
            where.append(f"e.kind IN ({', '.join('?' for _ in query.kinds)})")
            params.extend(query.kinds)
        for clause, value in (("e.agency = ?", query.agency),
                              ("d.procedure = ?", query.procedure),
                              ("e.at >= ?", micros(query.since)),
                              ("e.at < ?", micros(query.until))):
            if value is not None:
                where.append(clause)
                params.append(value)
        statement = S["events"] + "WHERE " + " AND ".join(where) + " ORDER BY e.id"
        if query.limit:
            statement += f" LIMIT {int(query.limit)}"
        return [_event(r) for r in self._raw(statement, params).fetchall()]

    def spec(self, spec_id: int) -> SpecRow | None:
        row = self._run("spec", (spec_id,)).fetchone()
        return SpecRow(row[0], bytes(row[1]), bytes(row[2]) if row[2] is not None else None) \
            if row is not None else None

    def due_timers(self, now: datetime, after: tuple[datetime, str] | None,
                   batch: int) -> list[TimerRow]:
        statement = ("SELECT id, dossier_id, step, due_at FROM onestop_timers "
                     "WHERE due_at IS NOT NULL AND due_at <= ?")
        params: list[Any] = [micros(now)]
        if after is not None:
            statement += " AND (due_at > ? OR (due_at = ? AND id > ?))"
            params += [micros(after[0]), micros(after[0]), after[1]]
        statement += f" ORDER BY due_at, id LIMIT {int(batch)}"
        return [TimerRow(r[0], r[1], r[2], _at(r[3]))
                for r in self._raw(statement, params).fetchall()]

    def next_timer_due(self) -> datetime | None:
        return instant(self._run("next_timer", ()).fetchone()[0])

    def outbox(self, after: int, limit: int) -> list[OutboxRow]:
        return [OutboxRow(r[0], r[1], r[2], r[3], r[4], _at(r[5]), json.loads(r[6]),
                          instant(r[7]))
                for r in self._run("outbox", (after, limit)).fetchall()]

    def search(self, query: DossierQuery) -> list[DossierRow]:
        where, params = ["d.id < ?" if query.newest_first else "d.id > ?"], \
            list[Any]([query.after if query.after or not query.newest_first else 2**63 - 1])
        if query.statuses:
            where.append(f"d.status IN ({', '.join('?' for _ in query.statuses)})")
            params.extend(query.statuses)
        if query.agency is not None:
            where.append("(d.desk_agency = ? OR d.resolving_agency = ?)")
            params += [query.agency, query.agency]
        for clause, value in (("d.procedure = ?", query.procedure),
                              ("d.channel = ?", query.channel),
                              ("d.received_at >= ?", micros(query.since)),
                              ("d.received_at < ?", micros(query.until)),
                              ("d.applicant_id = ?", query.applicant_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        listed = _D.replace("d.state", "NULL")
        statement = (f"SELECT {listed} FROM onestop_dossiers d WHERE " + " AND ".join(where)
                     + f" ORDER BY d.id {'DESC' if query.newest_first else 'ASC'}"
                     + f" LIMIT {int(query.limit)}")
        return [DossierRow(_dossier(r)) for r in self._raw(statement, params).fetchall()]

    def stale_facts(self, version: int, after: int, limit: int) -> list[int]:
        return [int(r[0]) for r in self._run("stale_facts", (version, after, limit))]

    def feedback(self, dossier_id: int) -> list[FeedbackRow]:
        return [FeedbackRow(r[0], r[1], r[2], _at(r[3]), _at(r[4]), instant(r[5]), r[6])
                for r in self._run("feedback", (dossier_id,)).fetchall()]

    # -- writes ------------------------------------------------------------------------
    def update_facts(self, dossier_id: int, facts: Mapping[str, Any]) -> None:
        self._run("update_facts", [micros(facts[c]) if c in DOSSIER_INSTANTS else facts[c]
                                   for c in FACT_COLUMNS] + [dossier_id])

    def insert_feedback(self, values: Mapping[str, Any]) -> None:
        self._run("insert_feedback", (values["dossier_id"], values["number"], values["kind"],
                                      micros(values["received_at"]),
                                      micros(values["due_at"])))

    def update_feedback(self, dossier_id: int, number: int, *,
                        answered_at: datetime | None = None,
                        rating: int | None = None) -> None:
        if answered_at is not None:
            self._run("answer_feedback", (micros(answered_at), dossier_id, number))
        if rating is not None:
            self._run("rate_feedback", (rating, dossier_id, number))

    def ensure_spec(self, spec_hash: str, process_id: str, file: str, body: bytes,
                    dictionary: bytes, at: datetime) -> int:
        found = self._run("spec_by_hash", (spec_hash,)).fetchone()
        if found is None:
            # Another engine opening the same database may store the same model meanwhile.
            self._run("insert_spec", (spec_hash, process_id, file, body, micros(at),
                                      dictionary))
            found = self._run("spec_by_hash", (spec_hash,)).fetchone()
        return int(found[0])

    def put_officer(self, officer: Officer) -> None:
        if self._run("officer_exists", (officer.id,)).fetchone() is None:
            self._run("insert_officer", (officer.id, officer.name))
        else:
            self._run("update_officer", (officer.name, officer.id))
        self._run("delete_roles", (officer.id,))
        rows = [(officer.id, agency, role) for agency, roles in officer.roles.items()
                for role in sorted(roles)]
        if rows:
            self._cursor.executemany(self._s["insert_role"], rows)

    def next_sequence(self, key: str) -> int:
        return int(self._run("next_counter", (key,)).fetchone()[0])

    def insert_dossier(self, values: Mapping[str, Any]) -> int:
        row = dict(values, version=1, info=_json(values["info"]))
        for name in DOSSIER_INSTANTS:
            row[name] = micros(row.get(name))
        found = self._run("insert_dossier",
                          [row.get(c) for c in _INSERT_DOSSIER_COLUMNS]).fetchone()
        return int(found[0])

    def update_dossier(self, dossier_id: int, version: int, status: int, state: bytes,
                       finished_at: datetime | None, appointment_at: datetime | None,
                       paused_at: datetime | None) -> int:
        cursor = self._run("update_dossier", (status, state, micros(finished_at),
                                              micros(appointment_at), micros(paused_at),
                                              version + 1, dossier_id, version))
        if cursor.rowcount != 1:
            raise ConcurrentUpdate(f"dossier {dossier_id} was changed by another command; "
                                   f"retry")
        return version + 1

    def take_task(self, task_id: str, officer_id: str) -> bool:
        return bool(self._run("take_task", (task_id, officer_id)).rowcount == 1)

    def delete_task(self, task_id: str) -> None:
        self._run("delete_task", (task_id,))

    def claim_task(self, task_id: str, officer_id: str) -> bool:
        return bool(self._run("claim", (officer_id, task_id)).rowcount == 1)

    def release_task(self, task_id: str, officer_id: str) -> bool:
        return bool(self._run("release", (task_id, officer_id)).rowcount == 1)

    def assign_task(self, task_id: str, officer_id: str, holder: str | None) -> bool:
        if holder is None:
            return self.claim_task(task_id, officer_id)
        return bool(self._run("assign_held", (officer_id, task_id, holder)).rowcount == 1)

    def insert_tasks(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._cursor.executemany(self._s["insert_task"], [
                (r["id"], r["dossier_id"], r["step"], r["role"], r["agency"], r["claimed_by"],
                 micros(r["ready_at"]), micros(r["due_at"])) for r in rows])

    def insert_timers(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._cursor.executemany(self._s["insert_timer"], [
                (r["id"], r["dossier_id"], r["step"], micros(r["due_at"])) for r in rows])

    def delete_timer(self, timer_id: str) -> bool:
        return bool(self._run("delete_timer", (timer_id,)).rowcount == 1)

    def take_timer(self, timer_id: str, now: datetime) -> datetime | None:
        row = self._run("take_timer", (timer_id, micros(now))).fetchone()
        return instant(row[0]) if row is not None else None

    def reschedule_timer(self, timer_id: str, due_at: datetime | None) -> None:
        self._run("reschedule_timer", (micros(due_at), timer_id))

    def append_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        # A command's entries share their instant: converted once.
        at, at_micros = None, None
        values = []
        for r in rows:
            if r["at"] is not at:
                at, at_micros = r["at"], micros(r["at"])
            values.append((r["dossier_id"], at_micros, r["kind"], r["step"], r["actor"],
                           r["agency"], _json(r["detail"]), r["version"]))
        self._cursor.executemany(self._s["insert_event"], values)


    def append_outbox(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._cursor.executemany(self._s["insert_outbox"], [
                (r["dossier_id"], r["key"], r["kind"], r["status"], micros(r["at"]),
                 _json(r["payload"])) for r in rows])

    def mark_sent(self, keys: Sequence[str], at: datetime) -> int:
        sent = 0
        for key in keys:
            sent += self._run("mark_sent", (micros(at), key)).rowcount
        return sent


class SqlStore:
    """SQLite or PostgreSQL, chosen by the URL; the schema brought to the newest revision
    on open (:mod:`onestop.store.migrate`)."""

    def __init__(self, database: str, *, durability: str = "full",
                 lock_timeout: float = 30.0, upgrade: bool = True) -> None:
        self.url = normalise_url(database)
        try:
            # LIFO: a command gets the connection used last, whose page cache is warm.
            # No rollback when a connection goes back to the pool: every unit ends with
            # its own COMMIT or ROLLBACK (a failed COMMIT is rolled back by the unit).
            self._sql: SqlEngine = create_engine(self.url, pool_use_lifo=True,
                                                 pool_reset_on_return=None)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(_cannot_use(self.url, exc)) from None
        shown = self._sql.url.render_as_string(hide_password=True)
        self.dialect = self._sql.dialect.name
        if self.dialect == "sqlite":
            target = self._sql.url.database
            if target and target.startswith("file:"):      # a URI filename (?mode=ro, ...)
                target = target[5:].split("?", 1)[0]
            if target and target != ":memory:" and not Path(target).parent.is_dir():
                raise StoreError(f"cannot open database {shown}: folder "
                                 f"{Path(target).parent} does not exist")
            _configure_sqlite(self._sql, durability, lock_timeout)
        elif self.dialect == "postgresql":
            _configure_postgres(self._sql, lock_timeout)
        self._postgres = self.dialect == "postgresql"
        self._errors: tuple[type[BaseException], ...] = (SQLAlchemyError,
                                                        *_driver_errors(self._sql))
        self._shown = shown
        statements = dict(S, dossier_by_id_lock=S["dossier_by_id"] + " FOR UPDATE")
        self._statements = {name: (text.replace("?", "%s") if self._postgres else text)
                            for name, text in statements.items()}
        #: The schema revisions before and after opening (see :mod:`.migrate`).
        self.upgraded: tuple[str | None, str | None] = (None, None)
        if upgrade:
            try:
                with self._sql.connect().execution_options(onestop_write=True) as conn:
                    with conn.begin():
                        self.upgraded = migrate.upgrade(conn)
            except self._errors as exc:
                self._sql.dispose()
                reason = getattr(exc, "orig", None) or exc
                raise StoreError(f"cannot open database {shown}: {reason}") from None
            except BaseException:
                self._sql.dispose()
                raise

    def revision(self) -> str | None:
        """The schema revision the database is at (None: no onestop tables)."""
        try:
            with self._sql.connect() as conn, conn.begin():
                return migrate.current(conn)
        except self._errors as exc:
            reason = getattr(exc, "orig", None) or exc
            raise StoreError(f"cannot read database {self._shown}: {reason}") from None

    def close(self) -> None:
        self._sql.dispose()

    def command(self) -> "_Scope":
        """A read-write unit that locks what it reads: committed if the block succeeds,
        else rolled back."""
        return _Scope(self, True)

    def read(self) -> "_Scope":
        """A read-only unit on committed data."""
        return _Scope(self, False)

    # One name for callers that store something outside a command (officers, models).
    write = command


class _Scope:
    """One unit of work on a connection checked out of the pool, with explicit BEGIN
    and COMMIT (a context manager giving the :class:`SqlUnit`). A database failure —
    at BEGIN, in the block, at COMMIT — is a :class:`StoreError` and the unit is rolled
    back; the connection always goes back to the pool."""

    __slots__ = ("_store", "_write", "_raw")

    def __init__(self, store: SqlStore, write: bool) -> None:
        self._store, self._write = store, write
        self._raw: Any = None

    def _failed(self, exc: BaseException) -> StoreError:
        outcome = "nothing was stored" if self._write else "nothing was read"
        return StoreError(f"database error, {outcome}: {exc}")

    def __enter__(self) -> SqlUnit:
        store = self._store
        try:
            raw = store._sql.raw_connection()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot reach database {store._shown}: "
                             f"{getattr(exc, 'orig', exc)}") from None
        try:
            driver = raw.driver_connection
            assert driver is not None
            if not store._postgres:
                driver.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
        except store._errors as exc:
            raw.close()
            raise self._failed(exc) from None
        except BaseException:
            raw.close()
            raise
        self._raw = raw
        return SqlUnit(driver, store._statements, store._postgres, self._write)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 _trace: Any) -> Literal[False]:
        raw, errors = self._raw, self._store._errors
        try:
            if kind is None:
                raw.commit()
            else:
                raw.rollback()
        except errors as failure:
            _quietly_roll_back(raw, errors)
            raise self._failed(failure) from None
        except BaseException:
            _quietly_roll_back(raw, errors)
            raise
        finally:
            raw.close()
        if exc is not None and isinstance(exc, errors):
            raise self._failed(exc) from None
        return False


def _quietly_roll_back(raw: Any, errors: tuple[type[BaseException], ...]) -> None:
    """End whatever a failed COMMIT left open, before the connection goes back to the
    pool (a connection that cannot even roll back is dropped from the pool)."""
    try:
        raw.rollback()
    except errors:
        raw.invalidate()


def _driver_errors(sql: SqlEngine) -> tuple[type[BaseException], ...]:
    """The database driver's own error classes (a failure below SQLAlchemy)."""
    error = getattr(sql.dialect.dbapi, "Error", None)
    return (error,) if isinstance(error, type) and issubclass(error, BaseException) else ()


def _cannot_use(url: str, exc: Exception) -> str:
    """Why a database URL cannot be used, never showing its password; for PostgreSQL,
    how to get the driver or write the URL."""
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
        # BEGIN is issued explicitly (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The wait for another connection's lock first: switching a new file to WAL
        # needs the lock too, and another engine may be creating the tables right now.
        cursor.execute(f"PRAGMA busy_timeout={int(lock_timeout * 1000)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sql, "begin")
    def _on_begin(conn: Any) -> None:
        # SQLAlchemy's own transactions (the schema's migrations): the write lock first.
        immediate = conn.get_execution_options().get("onestop_write")
        driver = conn.connection.dbapi_connection
        assert driver is not None
        driver.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


def checked_database(database: Any) -> str:
    """``database`` as text: a URL or a file path; InvalidInput for anything else."""
    if not isinstance(database, (str, os.PathLike)) or not str(database).strip() \
            or "\x00" in str(database):
        raise InvalidInput(f"database must be a SQLAlchemy URL or a file path, not "
                           f"{database!r}"[:200])
    text = str(database)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("database path holds a lone surrogate (broken UTF-16), which "
                           "is not text") from None
    return text
