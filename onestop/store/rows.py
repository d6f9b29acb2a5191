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
                   "appointment_at", "paused_at", "version", "info", "state",
                   "applicant_id", "due_at", "resolved_at", "mark", "worked", "pause_work",
                   "apology", "flags", "rating", "facts_version")
#: Of those, the facts reports count (onestop.rules.facts), written by ``update_facts``.
FACT_COLUMNS = DOSSIER_COLUMNS[DOSSIER_COLUMNS.index("applicant_id"):]
#: Instants among the dossier's columns.
DOSSIER_INSTANTS = ("received_at", "finished_at", "appointment_at", "paused_at", "due_at",
                    "resolved_at")


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
    applicant_id: str | None
    due_at: datetime | None
    resolved_at: datetime | None
    mark: int | None
    worked: int | None
    pause_work: int
    apology: int
    flags: int
    rating: int | None
    facts_version: int

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
class OutboxRow:
    """A message for the national portal (``sent_at`` None: not sent yet)."""

    id: int
    key: str
    dossier_code: str
    kind: str
    status: int
    at: datetime
    payload: dict[str, Any]
    sent_at: datetime | None


@dataclass(frozen=True)
class FeedbackRow:
    """An applicant's feedback on a dossier (``answered_at`` None: not answered yet)."""

    dossier_id: int
    number: int
    kind: str
    received_at: datetime
    due_at: datetime
    answered_at: datetime | None
    rating: int | None


@dataclass(frozen=True)
class DossierQuery:
    """Which dossiers to list, by row id: after the id ``after``, at most ``limit``; of
    any of the ``statuses`` (all when empty), received or resolved by ``agency`` (desk
    or resolving agency), of a ``procedure`` or ``channel``, received at or after
    ``since`` and before ``until``, of the applicant with identity number
    ``applicant_id``; ``newest_first`` reads the ids downwards (``after``: below it)."""

    after: int = 0
    limit: int = 50
    statuses: tuple[int, ...] = ()
    agency: str | None = None
    procedure: str | None = None
    channel: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    applicant_id: str | None = None
    newest_first: bool = False


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
    def officer(self, officer_id: str) -> Officer | None:
        """The registered officer with this id and their roles (None: none)."""
        ...

    def dossier(self, code: str) -> DossierRow | None:
        """The dossier with this code (not locked)."""
        ...

    def dossier_by_id(self, dossier_id: int) -> DossierRow | None:
        """The dossier with this row id, locked until the unit ends in a command."""
        ...

    def task_for(self, task_id: str, officer_id: str) -> TaskRow | None:
        """The open task, its dossier (locked in a command: the dossier first, always)
        and whether the officer exists and holds the task's role at its agency."""
        ...

    def task(self, task_id: str) -> OpenTaskRow | None:
        """One open task."""
        ...

    def open_tasks(self, dossier_id: int) -> list[OpenTaskRow]:
        """A dossier's open tasks, by the instant they became ready, then step."""
        ...

    def inbox(self, officer_id: str, pairs: Sequence[tuple[str, str]]) -> list[OpenTaskRow]:
        """Open tasks of the (agency, role) ``pairs`` that are unclaimed or claimed by
        the officer, oldest first (then by dossier code)."""
        ...

    def events(self, dossier_id: int) -> list[EventRow]:
        """A dossier's event log, oldest first."""
        ...

    def event_stream(self, query: EventQuery) -> list[EventRow]:
        """Events across dossiers as ``query`` asks, by id."""
        ...

    def spec(self, spec_id: int) -> SpecRow | None:
        """A stored model: its hash, body and state dictionary."""
        ...

    def due_timers(self, now: datetime, after: tuple[datetime, str] | None,
                   batch: int) -> list[TimerRow]:
        """Up to ``batch`` timers due by ``now``, by (due instant, id), after the key
        ``after``: read through the index on the due instant."""
        ...

    def next_timer_due(self) -> datetime | None:
        """The earliest due instant of a scheduled timer (None: none is scheduled)."""
        ...

    def outbox(self, after: int, limit: int) -> list[OutboxRow]:
        """Up to ``limit`` messages not sent yet, by id, after the message id ``after``."""
        ...

    def search(self, query: DossierQuery) -> list[DossierRow]:
        """Dossiers as ``query`` asks (their ``state`` left out: None)."""
        ...

    def stale_facts(self, version: int, after: int, limit: int) -> list[int]:
        """Up to ``limit`` ids above ``after`` of dossiers whose facts were folded by a
        version older than ``version``, by id."""
        ...

    def feedback(self, dossier_id: int) -> list[FeedbackRow]:
        """A dossier's feedback, by number."""
        ...

    # -- writes ------------------------------------------------------------------------
    def ensure_spec(self, spec_hash: str, process_id: str, file: str, body: bytes,
                    dictionary: bytes, at: datetime) -> int:
        """Store a model once (with the state dictionary for its states); its id.
        Storing the same model again, even from another engine at once, is harmless."""
        ...

    def put_officer(self, officer: Officer) -> None:
        """Register an officer, or replace the name and roles of a registered one."""
        ...

    def next_sequence(self, key: str) -> int:
        """The next number of the counter ``key`` (1 for a new counter)."""
        ...

    def insert_dossier(self, values: Mapping[str, Any]) -> int:
        """Store a new dossier (its columns but the id, at version 1); its row id."""
        ...

    def update_dossier(self, dossier_id: int, version: int, status: int, state: bytes,
                       finished_at: datetime | None, appointment_at: datetime | None,
                       paused_at: datetime | None) -> int:
        """Store what a command changed of a dossier read at ``version``; the new
        version. :class:`~onestop.errors.ConcurrentUpdate` when it changed meanwhile."""
        ...

    def update_facts(self, dossier_id: int, facts: Mapping[str, Any]) -> None:
        """Store a dossier's facts (every one of ``FACT_COLUMNS``)."""
        ...

    def insert_feedback(self, values: Mapping[str, Any]) -> None:
        """Store an applicant's feedback (``dossier_id``, ``number``, ``kind``,
        ``received_at``, ``due_at``)."""
        ...

    def update_feedback(self, dossier_id: int, number: int, *,
                        answered_at: datetime | None = None,
                        rating: int | None = None) -> None:
        """Record the answer to a feedback, or the applicant's rating of it (what is
        given)."""
        ...

    def take_task(self, task_id: str, officer_id: str) -> bool:
        """Close an open task unless someone else claimed it; whether it was taken."""
        ...

    def delete_task(self, task_id: str) -> None:
        """Close a task the process no longer waits on (cancelled)."""
        ...

    def claim_task(self, task_id: str, officer_id: str) -> bool:
        """Give an unclaimed task to the officer; whether it was unclaimed."""
        ...

    def release_task(self, task_id: str, officer_id: str) -> bool:
        """Hand back a task the officer holds; whether they held it."""
        ...

    def assign_task(self, task_id: str, officer_id: str, holder: str | None) -> bool:
        """Give a task held by ``holder`` (None: unclaimed) to the officer; whether it
        was still held so."""
        ...

    def insert_tasks(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store tasks that opened (``id``, ``dossier_id``, ``step``, ``role``,
        ``agency``, ``claimed_by``, ``ready_at``, ``due_at``)."""
        ...

    def insert_timers(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Store timers the process waits on (``id``, ``dossier_id``, ``step``,
        ``due_at``; None: not scheduled)."""
        ...

    def delete_timer(self, timer_id: str) -> bool:
        """Drop a timer the process left; whether it was there."""
        ...

    def take_timer(self, timer_id: str, now: datetime) -> datetime | None:
        """Take a timer to fire it, only if it is still due at ``now``; its due instant
        (None: fired by someone else, suspended or moved meanwhile)."""
        ...

    def reschedule_timer(self, timer_id: str, due_at: datetime | None) -> None:
        """Move a timer (None: suspend it while its clock is paused)."""
        ...

    def append_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Append entries to the event log (``dossier_id``, ``at``, ``kind``, ``step``,
        ``actor``, ``agency``, ``detail``, ``version``), in order."""
        ...

    def append_outbox(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add messages for the portal (``dossier_id``, ``key``, ``kind``, ``status``,
        ``at``, ``payload``)."""
        ...

    def mark_sent(self, keys: Sequence[str], at: datetime) -> int:
        """Mark the messages with these keys sent at ``at``; how many were pending."""
        ...


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
