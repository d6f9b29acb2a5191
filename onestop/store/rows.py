"""What the store hands the engine: plain rows, the same from every backend, and the one
interface (:class:`Unit`) a transaction offers. Nothing here touches a database."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping, Protocol, Sequence

from ..model import Officer

#: A dossier's columns, in the order the SQL store selects them.
DOSSIER_COLUMNS = ("id", "code", "procedure", "spec_id", "status", "channel", "desk_agency",
                   "resolving_agency", "received_at", "received_by", "finished_at", "regime",
                   "appointment_at", "paused_at", "version", "info", "state")


class DossierRow:
    """A dossier's columns, typed: instants aware (UTC), ``info`` decoded, ``state`` bytes."""

    __slots__ = DOSSIER_COLUMNS
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

    def __init__(self, values: Mapping[str, Any]) -> None:
        for name in DOSSIER_COLUMNS:
            setattr(self, name, values[name])

    def dossier(self) -> dict[str, Any]:
        """The dossier columns, by name."""
        return {name: getattr(self, name) for name in DOSSIER_COLUMNS}


class TaskRow(DossierRow):
    """An open task, its dossier, and the acting officer's standing (``officer_id`` None:
    no such officer; ``held_role`` None: the officer lacks the task's role there)."""

    __slots__ = ("task_id", "step", "role", "agency", "claimed_by", "ready_at", "task_due_at",
                 "officer_id", "held_role")
    task_id: str
    step: str
    role: str
    agency: str
    claimed_by: str | None
    ready_at: datetime
    task_due_at: datetime | None
    officer_id: str | None
    held_role: str | None

    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        for name in self.__slots__:
            setattr(self, name, values[name])


@dataclass(frozen=True)
class OpenTaskRow:
    """An open task, as inboxes and dossier snapshots list it."""

    id: str
    step: str
    role: str
    agency: str
    claimed_by: str | None
    ready_at: datetime
    due_at: datetime | None
    dossier_code: str
    spec_id: int


@dataclass(frozen=True)
class TimerRow:
    """A timer that is due."""

    id: str
    dossier_id: int
    step: str
    due_at: datetime


@dataclass(frozen=True)
class EventRow:
    """One entry of the event log, with its dossier's code and procedure."""

    id: int
    dossier_id: int
    dossier_code: str
    procedure: str
    at: datetime
    kind: str
    step: str | None
    actor: str | None
    agency: str | None
    detail: dict[str, Any] | None
    version: int


@dataclass(frozen=True)
class SpecRow:
    """A stored model: its hash, canonical body and state dictionary."""

    hash: str
    body: bytes
    dictionary: bytes | None


@dataclass(frozen=True)
class EventQuery:
    """Which events to read across dossiers, oldest first: after the event id ``after``,
    of the ``kinds`` given, of an agency or a procedure, at or after ``since`` and before
    ``until``; at most ``limit`` (0: all); of one dossier when ``dossier_id`` is set."""

    after: int = 0
    kinds: tuple[str, ...] = ()
    agency: str | None = None
    procedure: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 500
    dossier_id: int | None = None


class Unit(Protocol):
    """One transaction of a store: what the engine reads and writes. A unit from
    ``Store.command()`` locks the dossier rows it reads with ``task_for`` and
    ``dossier_by_id`` until it ends; every write goes through it."""

    # -- reads -------------------------------------------------------------------------
    def officer(self, officer_id: str) -> Officer | None: ...
    def dossier(self, code: str) -> DossierRow | None: ...
    def dossier_by_id(self, dossier_id: int) -> DossierRow | None: ...
    def task_for(self, task_id: str, officer_id: str) -> TaskRow | None: ...
    def task(self, task_id: str) -> OpenTaskRow | None: ...
    def open_tasks(self, dossier_id: int) -> list[OpenTaskRow]: ...
    def inbox(self, officer_id: str, pairs: Sequence[tuple[str, str]]) -> list[OpenTaskRow]: ...
    def events(self, dossier_id: int) -> list[EventRow]: ...
    def event_stream(self, query: EventQuery) -> list[EventRow]: ...
    def count_events(self, dossier_id: int, kind: str, agency: str) -> int: ...
    def spec(self, spec_id: int) -> SpecRow | None: ...
    def due_timers(self, now: datetime, after: tuple[datetime, str] | None,
                   batch: int) -> list[TimerRow]: ...
    def next_timer_due(self) -> datetime | None: ...

    # -- writes ------------------------------------------------------------------------
    def ensure_spec(self, spec_hash: str, process_id: str, file: str, body: bytes,
                    dictionary: bytes, at: datetime) -> int: ...
    def put_officer(self, officer: Officer) -> None: ...
    def next_sequence(self, key: str) -> int: ...
    def insert_dossier(self, values: Mapping[str, Any]) -> int: ...
    def update_dossier(self, dossier_id: int, version: int, status: int, state: bytes,
                       finished_at: datetime | None, appointment_at: datetime | None,
                       paused_at: datetime | None) -> int: ...
    def take_task(self, task_id: str, officer_id: str) -> bool: ...
    def delete_task(self, task_id: str) -> None: ...
    def claim_task(self, task_id: str, officer_id: str) -> bool: ...
    def release_task(self, task_id: str, officer_id: str) -> bool: ...
    def assign_task(self, task_id: str, officer_id: str, holder: str | None) -> bool: ...
    def insert_tasks(self, rows: Sequence[Mapping[str, Any]]) -> None: ...
    def insert_timers(self, rows: Sequence[Mapping[str, Any]]) -> None: ...
    def delete_timer(self, timer_id: str) -> bool: ...
    def take_timer(self, timer_id: str, now: datetime) -> datetime | None: ...
    def reschedule_timer(self, timer_id: str, due_at: datetime | None) -> None: ...
    def append_events(self, rows: Sequence[Mapping[str, Any]]) -> None: ...


class Store(Protocol):
    """Where dossiers live: SQL (SQLite, PostgreSQL) or memory."""

    #: ``"sqlite"``, ``"postgresql"`` or ``"memory"``.
    dialect: str

    def command(self) -> AbstractContextManager[Unit]:
        """A read-write unit that locks what it reads: kept if the block succeeds, else
        undone; a store failure is a :class:`~onestop.errors.StoreError`."""
        ...

    def write(self) -> AbstractContextManager[Unit]:
        """The same as :meth:`command` (for storing officers and models)."""
        ...

    def read(self) -> AbstractContextManager[Unit]:
        """A unit on committed data."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
