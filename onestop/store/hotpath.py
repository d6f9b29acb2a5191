"""Engine commands in plain SQL, on a pooled DBAPI connection.

An engine command (receive, claim, release, complete) costs one fsync and a handful of
statements. Through SQLAlchemy Core each statement carries ~100 µs of Python overhead and
each transaction ~120 µs more, which for a seven-step dossier adds up to more than the
database work itself (see bench/engine.py). Commands therefore run here, on a connection
checked out of the SQLAlchemy pool (so the same connection settings apply), with explicit
BEGIN/COMMIT; queries, schema and model storage stay on SQLAlchemy Core.

The SQL is portable between SQLite (3.35+) and PostgreSQL; tables and columns are the
ones :mod:`onestop.store.schema` defines, and the tests run on both databases.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping, Sequence

from ..errors import ConcurrentUpdate
from ..model import Officer
from .schema import from_micros as instant
from .schema import to_micros as micros

_DOSSIER_COLUMNS = ("id", "code", "procedure", "spec_id", "status", "channel", "desk_agency",
                    "resolving_agency", "received_at", "received_by", "finished_at", "regime",
                    "appointment_at", "paused_at", "version", "info", "state")
_TASK_FOR = (
    "SELECT t.id, t.step, t.role, t.agency, t.claimed_by, t.ready_at, t.due_at, "
    + ", ".join(f"d.{c}" for c in _DOSSIER_COLUMNS)
    + ", o.id, r.role FROM onestop_tasks t"
    " JOIN onestop_dossiers d ON d.id = t.dossier_id"
    " LEFT JOIN onestop_officers o ON o.id = ?"
    " LEFT JOIN onestop_officer_roles r ON r.officer_id = ? AND r.agency = t.agency"
    " AND r.role = t.role"
    " WHERE t.id = ?")
_DELETE_TASK = "DELETE FROM onestop_tasks WHERE id = ?"
_LOCK_TASK_DOSSIER = ("SELECT id FROM onestop_dossiers WHERE id = "
                      "(SELECT dossier_id FROM onestop_tasks WHERE id = ?) FOR UPDATE")
# The task an officer completes: still open, and not claimed by someone else meanwhile.
_TAKE_TASK = ("DELETE FROM onestop_tasks WHERE id = ? AND (claimed_by IS NULL "
              "OR claimed_by = ?)")
_UPDATE_DOSSIER = ("UPDATE onestop_dossiers SET status = ?, state = ?, finished_at = ?, "
                   "appointment_at = ?, paused_at = ?, version = ? WHERE id = ? AND version = ?")
_DOSSIER_BY_ID = "SELECT " + ", ".join(_DOSSIER_COLUMNS) + " FROM onestop_dossiers WHERE id = ?"
_INSERT_EVENT = ("INSERT INTO onestop_events (dossier_id, at, kind, step, actor, agency, detail)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?)")
_INSERT_TASK = ("INSERT INTO onestop_tasks (id, dossier_id, step, role, agency, claimed_by, "
                "ready_at, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_INSERT_TIMER = ("INSERT INTO onestop_timers (id, dossier_id, step, due_at) "
                 "VALUES (?, ?, ?, ?)")
_DELETE_TIMER = "DELETE FROM onestop_timers WHERE id = ?"
# A timer is taken only if it is still due at the instant it is taken: a command may have
# suspended (NULL) or moved it since a sweep read it.
_TAKE_TIMER = ("DELETE FROM onestop_timers WHERE id = ? AND due_at IS NOT NULL "
               "AND due_at <= ? RETURNING due_at")
_RESCHEDULE_TIMER = "UPDATE onestop_timers SET due_at = ? WHERE id = ?"
_COUNT_EVENTS = ("SELECT COUNT(*) FROM onestop_events WHERE dossier_id = ? AND kind = ? "
                 "AND agency = ?")
_EVENTS = ("SELECT at, kind, step, actor, agency, detail FROM onestop_events "
           "WHERE dossier_id = ? ORDER BY id")
_INSERT_DOSSIER = ("INSERT INTO onestop_dossiers (code, procedure, spec_id, status, channel, "
                   "desk_agency, resolving_agency, received_at, received_by, finished_at, "
                   "regime, appointment_at, paused_at, version, info, state) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) RETURNING id")
_OFFICER = ("SELECT o.id, o.name, r.agency, r.role FROM onestop_officers o "
            "LEFT JOIN onestop_officer_roles r ON r.officer_id = o.id WHERE o.id = ?")
_OPEN_TASKS = ("SELECT t.id, t.step, t.role, t.agency, t.claimed_by, t.ready_at, t.due_at, "
               "d.code, d.spec_id FROM onestop_tasks t "
               "JOIN onestop_dossiers d ON d.id = t.dossier_id WHERE t.dossier_id = ? "
               "ORDER BY t.ready_at, t.step")
_CLAIM = "UPDATE onestop_tasks SET claimed_by = ? WHERE id = ? AND claimed_by IS NULL"
_RELEASE = "UPDATE onestop_tasks SET claimed_by = NULL WHERE id = ? AND claimed_by = ?"
_ASSIGN_FREE = "UPDATE onestop_tasks SET claimed_by = ? WHERE id = ? AND claimed_by IS NULL"
_ASSIGN_HELD = "UPDATE onestop_tasks SET claimed_by = ? WHERE id = ? AND claimed_by = ?"
_SPEC = "SELECT hash, body FROM onestop_specs WHERE id = ?"
_NEXT_COUNTER = ("INSERT INTO onestop_counters (key, value) VALUES (?, 1) "
                 "ON CONFLICT (key) DO UPDATE SET value = onestop_counters.value + 1 "
                 "RETURNING value")


def _at(value: Any) -> datetime:
    """A stored instant that cannot be missing."""
    found = instant(value)
    if found is None:
        raise ValueError("a required instant is missing from the store")
    return found


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False,
                                                  separators=(",", ":"))


class DossierRow:
    """A dossier's columns, for a command that starts from the dossier (a timer)."""

    __slots__ = _DOSSIER_COLUMNS
    #: The columns of the query that fills the row, in order.
    FIELDS: tuple[str, ...] = _DOSSIER_COLUMNS
    id: int
    code: str
    procedure: str
    spec_id: int
    status: int
    channel: int
    desk_agency: str
    resolving_agency: str
    received_at: datetime
    received_by: str
    finished_at: datetime | None
    regime: str
    appointment_at: datetime | None
    paused_at: datetime | None
    version: int
    info: dict[str, Any]
    state: bytes | None

    def __init__(self, values: Sequence[Any]) -> None:
        raw = dict(zip(self.FIELDS, values, strict=True))
        self._typed(raw)
        for name, value in raw.items():
            setattr(self, name, value)

    @staticmethod
    def _typed(raw: dict[str, Any]) -> None:
        """Stored as microseconds and JSON text: typed once, here."""
        raw["received_at"] = _at(raw["received_at"])
        for name in ("finished_at", "appointment_at", "paused_at"):
            raw[name] = instant(raw[name])
        raw["info"] = json.loads(raw["info"])
        raw["state"] = bytes(raw["state"]) if raw["state"] is not None else None

    def dossier(self) -> dict[str, Any]:
        """The dossier columns, by name."""
        return {name: getattr(self, name) for name in _DOSSIER_COLUMNS}


class TaskRow(DossierRow):
    """An open task, its dossier, and the acting officer's standing, from one query."""

    __slots__ = ("task_id", "step", "role", "agency", "claimed_by", "ready_at", "task_due_at",
                 "officer_id", "held_role")
    FIELDS = ("task_id", "step", "role", "agency", "claimed_by", "ready_at", "task_due_at",
              *_DOSSIER_COLUMNS, "officer_id", "held_role")
    task_id: str
    step: str
    role: str
    agency: str
    claimed_by: str | None
    ready_at: datetime
    task_due_at: datetime | None
    officer_id: str | None
    held_role: str | None

    @staticmethod
    def _typed(raw: dict[str, Any]) -> None:
        DossierRow._typed(raw)
        raw["ready_at"] = _at(raw["ready_at"])
        raw["task_due_at"] = instant(raw["task_due_at"])


class OpenTaskRow:
    """An open task as the command path reads it."""

    __slots__ = ("id", "step", "role", "agency", "claimed_by", "ready_at", "due_at",
                 "dossier_code", "spec_id")

    id: str
    step: str
    role: str
    agency: str
    claimed_by: str | None
    ready_at: datetime
    due_at: datetime | None
    dossier_code: str
    spec_id: int

    def __init__(self, values: Sequence[Any]) -> None:
        raw = dict(zip(self.__slots__, values, strict=True))
        raw["ready_at"] = _at(raw["ready_at"])
        raw["due_at"] = instant(raw["due_at"])
        for name, value in raw.items():
            setattr(self, name, value)


class HotPath:
    """The command statements, on one DBAPI connection inside one transaction."""

    def __init__(self, dbapi_connection: Any, dialect: str) -> None:
        self._cursor = dbapi_connection.cursor()
        self._postgres = dialect == "postgresql"

    def officer(self, officer_id: str) -> Officer | None:
        """The officer with their roles per agency, or None when unknown."""
        rows = self._run(_OFFICER, (officer_id,)).fetchall()
        if not rows:
            return None
        roles: dict[str, set[str]] = {}
        for _id, _name, agency, role in rows:
            if agency is not None:
                roles.setdefault(agency, set()).add(role)
        return Officer(rows[0][0], rows[0][1], {a: frozenset(r) for a, r in roles.items()})

    def open_tasks(self, dossier_id: int) -> list[OpenTaskRow]:
        return [OpenTaskRow(r) for r in self._run(_OPEN_TASKS, (dossier_id,)).fetchall()]

    def claim_task(self, task_id: str, officer_id: str) -> bool:
        return self._run(_CLAIM, (officer_id, task_id)).rowcount == 1

    def release_task(self, task_id: str, officer_id: str) -> bool:
        return self._run(_RELEASE, (task_id, officer_id)).rowcount == 1

    def assign_task(self, task_id: str, officer_id: str, holder: str | None) -> bool:
        """Give a task to ``officer_id`` if ``holder`` (None: nobody) still holds it."""
        if holder is None:
            return self._run(_ASSIGN_FREE, (officer_id, task_id)).rowcount == 1
        return self._run(_ASSIGN_HELD, (officer_id, task_id, holder)).rowcount == 1

    def spec(self, spec_id: int) -> tuple[str, bytes] | None:
        row = self._run(_SPEC, (spec_id,)).fetchone()
        return (row[0], bytes(row[1])) if row is not None else None

    def _sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self._postgres else statement

    def _run(self, statement: str, params: Sequence[Any]) -> Any:
        self._cursor.execute(self._sql(statement), params)
        return self._cursor

    def task_for(self, task_id: str, officer_id: str) -> TaskRow | None:
        """The open task, its dossier and the officer's standing, the dossier locked until
        the command ends (SQLite's write lock covers everything already).

        On PostgreSQL every command locks the dossier row first and only then touches
        its tasks and timers, so two commands on one dossier queue instead of
        deadlocking; the task is read after the lock is held, as the command before
        left it (claimed, or gone)."""
        if self._postgres:
            self._run(_LOCK_TASK_DOSSIER, (task_id,))
        row = self._run(_TASK_FOR, (officer_id, officer_id, task_id)).fetchone()
        return TaskRow(row) if row is not None else None

    def delete_task(self, task_id: str) -> None:
        self._run(_DELETE_TASK, (task_id,))

    def take_task(self, task_id: str, officer_id: str) -> bool:
        """Remove a task an officer completes; False when it is gone or claimed by
        someone else."""
        return self._run(_TAKE_TASK, (task_id, officer_id)).rowcount == 1

    def dossier_by_id(self, dossier_id: int) -> DossierRow | None:
        statement = _DOSSIER_BY_ID + (" FOR UPDATE" if self._postgres else "")
        row = self._run(statement, (dossier_id,)).fetchone()
        return DossierRow(row) if row is not None else None

    def update_dossier(self, dossier_id: int, version: int, status: int, state: bytes,
                       finished_at: datetime | None, appointment_at: datetime | None,
                       paused_at: datetime | None) -> int:
        cursor = self._run(_UPDATE_DOSSIER, (status, state, micros(finished_at),
                                             micros(appointment_at), micros(paused_at),
                                             version + 1, dossier_id, version))
        if cursor.rowcount != 1:
            raise ConcurrentUpdate(f"dossier {dossier_id} was changed by another command; "
                                   f"retry")
        return version + 1

    def append_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(_INSERT_EVENT), [
                (r["dossier_id"], micros(r["at"]), r["kind"], r["step"], r["actor"],
                 r["agency"], _json(r["detail"])) for r in rows])

    def insert_tasks(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(_INSERT_TASK), [
                (r["id"], r["dossier_id"], r["step"], r["role"], r["agency"], r["claimed_by"],
                 micros(r["ready_at"]), micros(r["due_at"])) for r in rows])

    # -- timers --------------------------------------------------------------------
    def insert_timers(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(_INSERT_TIMER), [
                (r["id"], r["dossier_id"], r["step"], micros(r["due_at"])) for r in rows])

    def delete_timer(self, timer_id: str) -> bool:
        """Remove a timer; False when it was already gone (fired or cancelled)."""
        return self._run(_DELETE_TIMER, (timer_id,)).rowcount == 1

    def take_timer(self, timer_id: str, now: datetime) -> datetime | None:
        """Remove a timer to fire it, if it is still due by ``now``; returns its due
        instant, or None when it is gone, suspended or moved later meanwhile."""
        row = self._run(_TAKE_TIMER, (timer_id, micros(now))).fetchone()
        return instant(row[0]) if row is not None else None

    def reschedule_timer(self, timer_id: str, due_at: datetime | None) -> None:
        self._run(_RESCHEDULE_TIMER, (micros(due_at), timer_id))

    def count_events(self, dossier_id: int, kind: str, agency: str) -> int:
        return int(self._run(_COUNT_EVENTS, (dossier_id, kind, agency)).fetchone()[0])

    def events(self, dossier_id: int) -> list[tuple[datetime, str, str | None, str | None,
                                                    str | None, dict[str, Any] | None]]:
        return [(_at(r[0]), r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else None)
                for r in self._run(_EVENTS, (dossier_id,)).fetchall()]

    def insert_dossier(self, values: Mapping[str, Any]) -> int:
        row = self._run(_INSERT_DOSSIER, (
            values["code"], values["procedure"], values["spec_id"], values["status"],
            values["channel"], values["desk_agency"], values["resolving_agency"],
            micros(values["received_at"]), values["received_by"],
            micros(values["finished_at"]), values["regime"], micros(values["appointment_at"]),
            micros(values.get("paused_at")), _json(values["info"]), values["state"],
        )).fetchone()
        return int(row[0])

    def next_sequence(self, key: str) -> int:
        return int(self._run(_NEXT_COUNTER, (key,)).fetchone()[0])
