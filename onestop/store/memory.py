"""The in-memory store: the same :class:`~onestop.store.rows.Unit` as the SQL store, kept
in Python dictionaries, for simulations, demos and tests that need no database.

A URL ``memory://NAME`` names one store per process: engines opened on the same name share
it (as engines on one database file do) until the process ends; ``memory://`` alone is a
private store that ends with its engine. Units run one at a time (a store-wide lock, as
SQLite's write lock), waiting at most ``lock_timeout`` for each other; a unit that fails is
undone entirely, so the store behaves like a database whose every command is one
transaction. Rows are copied in and out (JSON values through JSON, as the SQL store does),
so a caller can never change stored data by changing what it got back.
"""

from __future__ import annotations

import bisect
import itertools
import json
import threading
from contextlib import contextmanager
from functools import partial
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..errors import ConcurrentUpdate, StoreError
from ..model import Officer
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
from .schema import to_micros as micros

#: The URL scheme of the in-memory store.
SCHEME = "memory://"


_JSON = json.JSONEncoder(ensure_ascii=False).encode


def _copy(value: Any) -> Any:
    """A JSON value copied the way a database stores it (and refused as one would)."""
    if value is None:
        return None
    return json.loads(_JSON(value))


def _micros(instant: datetime) -> int:
    found = micros(instant)
    assert found is not None
    return found


def _utc(instant: Any) -> Any:
    """An aware instant in UTC, as the SQL store gives instants back."""
    return instant.astimezone(timezone.utc) if instant is not None else None


class _Data:
    """One in-memory database."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        #: The thread whose unit holds the lock (None: free).
        self.owner: int | None = None
        self.specs: dict[int, dict[str, Any]] = {}
        self.spec_ids: dict[str, int] = {}
        self.officers: dict[str, Officer] = {}
        self.counters: dict[str, int] = {}
        self.dossiers: dict[int, dict[str, Any]] = {}
        self.codes: dict[str, int] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.tasks_of: dict[int, set[str]] = {}
        self.timers: dict[str, dict[str, Any]] = {}
        #: ``(due micros, timer id)`` of the scheduled timers, sorted: the due index.
        self.due: list[tuple[int, str]] = []
        self.events: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []
        self.outbox_keys: dict[str, int] = {}
        self.events_of: dict[int, list[int]] = {}
        self.feedback: dict[tuple[int, int], dict[str, Any]] = {}
        self.next_dossier = itertools.count(1)


_NAMED: dict[str, _Data] = {}
_NAMED_LOCK = threading.Lock()


class MemoryStore:
    """Dossiers in memory (see the module's description)."""

    dialect = "memory"

    def __init__(self, database: str = SCHEME, *, lock_timeout: float = 30.0) -> None:
        name = database[len(SCHEME):] if database.startswith(SCHEME) else database
        if name:
            with _NAMED_LOCK:
                self._data = _NAMED.setdefault(name, _Data())
        else:
            self._data = _Data()
        self.url = SCHEME + name
        self._timeout = lock_timeout

    def close(self) -> None:
        """Nothing to release: a named store lives as long as the process."""

    @contextmanager
    def command(self) -> Iterator["MemoryUnit"]:
        """A read-write unit: kept if the block succeeds, else undone."""
        with self._unit(write=True) as unit:
            yield unit

    @contextmanager
    def read(self) -> Iterator["MemoryUnit"]:
        """A unit on committed data; within a command of the same thread (a connector
        reading through the engine), on that command's data."""
        with self._unit(write=False) as unit:
            yield unit

    write = command

    @contextmanager
    def _unit(self, write: bool) -> Iterator["MemoryUnit"]:
        data = self._data
        if data.owner == threading.get_ident():
            if write:
                raise StoreError(f"store {self.url} is locked by a command of this same "
                                 f"thread: a command cannot run inside another one; "
                                 f"nothing was stored")
            yield MemoryUnit(data)         # a read inside this thread's own command
            return
        if not data.lock.acquire(timeout=self._timeout if self._timeout > 0 else 0.001):
            raise StoreError(f"store {self.url} is locked by another command for longer "
                             f"than lock_timeout ({self._timeout:g} s); "
                             f"{'nothing was stored' if write else 'nothing was read'}")
        data.owner = threading.get_ident()
        unit = MemoryUnit(data)
        try:
            yield unit
        except BaseException:
            unit.undo()
            raise
        finally:
            data.owner = None
            data.lock.release()


class MemoryUnit:
    """One unit of work on an in-memory store (see :class:`~onestop.store.rows.Unit`)."""

    def __init__(self, data: _Data) -> None:
        self._d = data
        self._undo: list[Callable[[], object]] = []

    def undo(self) -> None:
        """Take back everything this unit changed, newest first."""
        while self._undo:
            self._undo.pop()()

    # -- reads -------------------------------------------------------------------------
    def officer(self, officer_id: str) -> Officer | None:
        found = self._d.officers.get(officer_id)
        if found is None:
            return None
        return Officer(found.id, found.name, {a: frozenset(r) for a, r in found.roles.items()})

    def dossier(self, code: str) -> DossierRow | None:
        found = self._d.codes.get(code)
        return self.dossier_by_id(found) if found is not None else None

    def dossier_by_id(self, dossier_id: int) -> DossierRow | None:
        row = self._d.dossiers.get(dossier_id)
        return DossierRow(dict(row, info=_copy(row["info"]))) if row is not None else None

    def task_for(self, task_id: str, officer_id: str) -> TaskRow | None:
        task = self._d.tasks.get(task_id)
        if task is None:
            return None
        values = dict(self._d.dossiers[task["dossier_id"]])
        values["info"] = _copy(values["info"])
        officer = self._d.officers.get(officer_id)
        values.update(task_id=task["id"], step=task["step"], role=task["role"],
                      agency=task["agency"], claimed_by=task["claimed_by"],
                      ready_at=task["ready_at"], task_due_at=task["due_at"],
                      officer_id=officer.id if officer is not None else None,
                      held_role=task["role"] if officer is not None
                      and officer.has_role(task["agency"], task["role"]) else None)
        return TaskRow(values)

    def _open(self, task: Mapping[str, Any]) -> OpenTaskRow:
        dossier = self._d.dossiers[task["dossier_id"]]
        return OpenTaskRow(task["id"], task["step"], task["role"], task["agency"],
                           task["claimed_by"], task["ready_at"], task["due_at"],
                           dossier["code"], dossier["spec_id"])

    def task(self, task_id: str) -> OpenTaskRow | None:
        task = self._d.tasks.get(task_id)
        return self._open(task) if task is not None else None

    def open_tasks(self, dossier_id: int) -> list[OpenTaskRow]:
        found = [self._d.tasks[t] for t in self._d.tasks_of.get(dossier_id, ())]
        found.sort(key=lambda t: (t["ready_at"], t["step"], t["id"]))
        return [self._open(t) for t in found]

    def inbox(self, officer_id: str, pairs: Sequence[tuple[str, str]]) -> list[OpenTaskRow]:
        wanted = set(pairs)
        found = [self._open(t) for t in self._d.tasks.values()
                 if (t["agency"], t["role"]) in wanted
                 and t["claimed_by"] in (None, officer_id)]
        found.sort(key=lambda t: (t.ready_at, t.dossier_code, t.id))
        return found

    def events(self, dossier_id: int) -> list[EventRow]:
        return [self._event(self._d.events[n]) for n in self._d.events_of.get(dossier_id, ())]

    def _event(self, event: Mapping[str, Any]) -> EventRow:
        dossier = self._d.dossiers[event["dossier_id"]]
        return EventRow(event["id"], event["dossier_id"], dossier["code"],
                        dossier["procedure"], event["at"], event["kind"], event["step"],
                        event["actor"], event["agency"], _copy(event["detail"]),
                        event["version"])

    def event_stream(self, query: EventQuery) -> list[EventRow]:
        if query.dossier_id is not None:
            candidates: Iterator[dict[str, Any]] = (
                self._d.events[n] for n in self._d.events_of.get(query.dossier_id, ())
                if n >= query.after)
        else:
            candidates = itertools.islice(self._d.events, max(query.after, 0), None)
        kinds = set(query.kinds)
        since, until = micros(query.since), micros(query.until)
        found: list[EventRow] = []
        for event in candidates:
            if kinds and event["kind"] not in kinds:
                continue
            if query.agency is not None and event["agency"] != query.agency:
                continue
            at = micros(event["at"])
            assert at is not None
            if (since is not None and at < since) or (until is not None and at >= until):
                continue
            if query.procedure is not None and \
                    self._d.dossiers[event["dossier_id"]]["procedure"] != query.procedure:
                continue
            found.append(self._event(event))
            if query.limit and len(found) >= query.limit:
                break
        return found

    def spec(self, spec_id: int) -> SpecRow | None:
        spec = self._d.specs.get(spec_id)
        return SpecRow(spec["hash"], spec["body"], spec["dictionary"]) \
            if spec is not None else None

    def due_timers(self, now: datetime, after: tuple[datetime, str] | None,
                   batch: int) -> list[TimerRow]:
        due = self._d.due
        start = bisect.bisect_right(due, (_micros(after[0]), after[1])) if after else 0
        limit = _micros(now)
        found: list[TimerRow] = []
        for at, timer_id in itertools.islice(due, start, None):
            if at > limit or len(found) >= batch:
                break
            timer = self._d.timers[timer_id]
            found.append(TimerRow(timer_id, timer["dossier_id"], timer["step"],
                                  timer["due_at"]))
        return found

    def outbox(self, after: int, limit: int) -> list[OutboxRow]:
        found: list[OutboxRow] = []
        for message in itertools.islice(self._d.outbox, max(after, 0), None):
            if message["sent_at"] is not None:
                continue
            found.append(OutboxRow(message["id"], message["key"],
                                   self._d.dossiers[message["dossier_id"]]["code"],
                                   message["kind"], message["status"], message["at"],
                                   _copy(message["payload"]), None))
            if len(found) >= limit:
                break
        return found

    def search(self, query: DossierQuery) -> list[DossierRow]:
        ids = sorted(self._d.dossiers, reverse=query.newest_first)
        since, until = micros(query.since), micros(query.until)
        statuses = set(query.statuses)
        found: list[DossierRow] = []
        for dossier_id in ids:
            passed = (query.after and dossier_id >= query.after) if query.newest_first \
                else dossier_id <= query.after
            if passed:
                continue
            row = self._d.dossiers[dossier_id]
            received = _micros(row["received_at"])
            if (statuses and row["status"] not in statuses) \
                    or (query.agency is not None
                        and query.agency not in (row["desk_agency"], row["resolving_agency"])) \
                    or (query.procedure is not None and row["procedure"] != query.procedure) \
                    or (query.channel is not None and row["channel"] != query.channel) \
                    or (since is not None and received < since) \
                    or (until is not None and received >= until) \
                    or (query.applicant_id is not None
                        and row["applicant_id"] != query.applicant_id):
                continue
            found.append(DossierRow(dict(row, info=_copy(row["info"]), state=None)))
            if len(found) >= query.limit:
                break
        return found

    def stale_facts(self, version: int, after: int, limit: int) -> list[int]:
        return [i for i in sorted(self._d.dossiers)
                if i > after and self._d.dossiers[i]["facts_version"] < version][:limit]

    def feedback(self, dossier_id: int) -> list[FeedbackRow]:
        return [FeedbackRow(**row) for (owner, _n), row in sorted(self._d.feedback.items())
                if owner == dossier_id]

    def next_timer_due(self) -> datetime | None:
        if not self._d.due:
            return None
        due: datetime = self._d.timers[self._d.due[0][1]]["due_at"]
        return due

    # -- writes ------------------------------------------------------------------------
    def ensure_spec(self, spec_hash: str, process_id: str, file: str, body: bytes,
                    dictionary: bytes, at: datetime) -> int:
        found = self._d.spec_ids.get(spec_hash)
        if found is not None:
            return found
        spec_id = len(self._d.specs) + 1
        self._d.specs[spec_id] = {"hash": spec_hash, "process_id": process_id, "file": file,
                                  "body": bytes(body), "loaded_at": _utc(at),
                                  "dictionary": bytes(dictionary)}
        self._d.spec_ids[spec_hash] = spec_id

        def undo() -> None:
            del self._d.specs[spec_id], self._d.spec_ids[spec_hash]
        self._undo.append(undo)
        return spec_id

    def put_officer(self, officer: Officer) -> None:
        previous = self._d.officers.get(officer.id)
        self._d.officers[officer.id] = Officer(officer.id, officer.name, {
            agency: frozenset(roles) for agency, roles in officer.roles.items() if roles})

        def undo() -> None:
            if previous is None:
                del self._d.officers[officer.id]
            else:
                self._d.officers[officer.id] = previous
        self._undo.append(undo)

    def next_sequence(self, key: str) -> int:
        previous = self._d.counters.get(key)
        self._d.counters[key] = (previous or 0) + 1

        def undo() -> None:
            if previous is None:
                del self._d.counters[key]
            else:
                self._d.counters[key] = previous
        self._undo.append(undo)
        return self._d.counters[key]

    def insert_dossier(self, values: Mapping[str, Any]) -> int:
        if values["code"] in self._d.codes:
            raise StoreError(f"a dossier with code {values['code']} is already stored")
        dossier_id = next(self._d.next_dossier)
        row = {name: values.get(name) for name in DOSSIER_COLUMNS}
        row.update(id=dossier_id, version=1, info=_copy(values["info"]))
        for name in DOSSIER_INSTANTS:
            row[name] = _utc(row[name])
        code = str(row["code"])
        self._d.dossiers[dossier_id] = row
        self._d.codes[code] = dossier_id

        def undo() -> None:
            del self._d.dossiers[dossier_id], self._d.codes[code]
        self._undo.append(undo)
        return dossier_id

    def update_dossier(self, dossier_id: int, version: int, status: int, state: bytes,
                       finished_at: datetime | None, appointment_at: datetime | None,
                       paused_at: datetime | None) -> int:
        row = self._d.dossiers.get(dossier_id)
        if row is None or row["version"] != version:
            raise ConcurrentUpdate(f"dossier {dossier_id} was changed by another command; "
                                   f"retry")
        previous = dict(row)
        row.update(status=status, state=bytes(state), finished_at=_utc(finished_at),
                   appointment_at=_utc(appointment_at), paused_at=_utc(paused_at),
                   version=version + 1)
        self._undo.append(lambda: row.update(previous))
        return version + 1

    def update_facts(self, dossier_id: int, facts: Mapping[str, Any]) -> None:
        row = self._d.dossiers[dossier_id]
        previous = {name: row[name] for name in FACT_COLUMNS}
        row.update({name: _utc(facts[name]) if name in DOSSIER_INSTANTS else facts[name]
                    for name in FACT_COLUMNS})
        self._undo.append(lambda: row.update(previous))

    def insert_feedback(self, values: Mapping[str, Any]) -> None:
        key = (values["dossier_id"], values["number"])
        if key in self._d.feedback:
            raise StoreError(f"feedback {values['number']} of dossier {values['dossier_id']} "
                             f"is already stored")
        self._d.feedback[key] = {
            "dossier_id": values["dossier_id"], "number": values["number"],
            "kind": values["kind"], "received_at": _utc(values["received_at"]),
            "due_at": _utc(values["due_at"]), "answered_at": None, "rating": None}
        self._undo.append(partial(self._d.feedback.pop, key))

    def update_feedback(self, dossier_id: int, number: int, *,
                        answered_at: datetime | None = None,
                        rating: int | None = None) -> None:
        row = self._d.feedback.get((dossier_id, number))
        if row is None:
            return
        previous = dict(row)
        if answered_at is not None:
            row["answered_at"] = _utc(answered_at)
        if rating is not None:
            row["rating"] = rating
        self._undo.append(lambda: row.update(previous))

    def _pop_task(self, task_id: str) -> dict[str, Any] | None:
        task = self._d.tasks.pop(task_id, None)
        if task is not None:
            self._d.tasks_of[task["dossier_id"]].discard(task_id)
        return task

    def _put_task(self, task: dict[str, Any]) -> None:
        self._d.tasks[task["id"]] = task
        self._d.tasks_of.setdefault(task["dossier_id"], set()).add(task["id"])

    def _drop_task(self, task_id: str) -> bool:
        task = self._pop_task(task_id)
        if task is None:
            return False
        self._undo.append(lambda: self._put_task(task))
        return True

    def take_task(self, task_id: str, officer_id: str) -> bool:
        task = self._d.tasks.get(task_id)
        if task is None or task["claimed_by"] not in (None, officer_id):
            return False
        return self._drop_task(task_id)

    def delete_task(self, task_id: str) -> None:
        self._drop_task(task_id)

    def _set_holder(self, task_id: str, expected: str | None, holder: str | None) -> bool:
        task = self._d.tasks.get(task_id)
        if task is None or task["claimed_by"] != expected:
            return False
        task["claimed_by"] = holder
        self._undo.append(lambda: task.update(claimed_by=expected))
        return True

    def claim_task(self, task_id: str, officer_id: str) -> bool:
        return self._set_holder(task_id, None, officer_id)

    def release_task(self, task_id: str, officer_id: str) -> bool:
        return self._set_holder(task_id, officer_id, None)

    def assign_task(self, task_id: str, officer_id: str, holder: str | None) -> bool:
        return self._set_holder(task_id, holder, officer_id)

    def insert_tasks(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for values in rows:
            task = {name: values[name] for name in ("id", "dossier_id", "step", "role",
                                                    "agency", "claimed_by", "ready_at",
                                                    "due_at")}
            if task["id"] in self._d.tasks:
                raise StoreError(f"task {task['id']} is already stored")
            task["ready_at"], task["due_at"] = _utc(task["ready_at"]), _utc(task["due_at"])
            self._put_task(task)
            self._undo.append(partial(self._pop_task, task["id"]))

    def _index(self, timer_id: str, due_at: datetime | None, add: bool) -> None:
        if due_at is None:
            return
        key = (_micros(due_at), timer_id)
        if add:
            bisect.insort(self._d.due, key)
        else:
            at = bisect.bisect_left(self._d.due, key)
            if at < len(self._d.due) and self._d.due[at] == key:
                del self._d.due[at]

    def _put_timer(self, timer: dict[str, Any]) -> None:
        self._d.timers[timer["id"]] = timer
        self._index(timer["id"], timer["due_at"], add=True)

    def _pop_timer(self, timer_id: str) -> dict[str, Any] | None:
        timer = self._d.timers.pop(timer_id, None)
        if timer is not None:
            self._index(timer_id, timer["due_at"], add=False)
        return timer

    def insert_timers(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for values in rows:
            timer = {name: values[name] for name in ("id", "dossier_id", "step", "due_at")}
            timer["due_at"] = _utc(timer["due_at"])
            if timer["id"] in self._d.timers:
                raise StoreError(f"timer {timer['id']} is already stored")
            self._put_timer(timer)
            self._undo.append(partial(self._pop_timer, timer["id"]))

    def delete_timer(self, timer_id: str) -> bool:
        timer = self._pop_timer(timer_id)
        if timer is None:
            return False
        self._undo.append(lambda: self._put_timer(timer))
        return True

    def take_timer(self, timer_id: str, now: datetime) -> datetime | None:
        timer = self._d.timers.get(timer_id)
        if timer is None or timer["due_at"] is None or timer["due_at"] > now:
            return None
        self.delete_timer(timer_id)
        due: datetime = timer["due_at"]
        return due

    def reschedule_timer(self, timer_id: str, due_at: datetime | None) -> None:
        timer = self._pop_timer(timer_id)
        if timer is None:
            return
        previous = dict(timer)
        self._put_timer(dict(timer, due_at=_utc(due_at)))

        def undo() -> None:
            self._pop_timer(timer_id)
            self._put_timer(previous)
        self._undo.append(undo)

    def append_outbox(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for values in rows:
            if values["key"] in self._d.outbox_keys:
                raise StoreError(f"a portal message with key {values['key']} is already "
                                 f"stored")
            number = len(self._d.outbox)
            self._d.outbox.append({"id": number + 1, "dossier_id": values["dossier_id"],
                                   "key": values["key"], "kind": values["kind"],
                                   "status": values["status"], "at": _utc(values["at"]),
                                   "payload": _copy(values["payload"]), "sent_at": None})
            self._d.outbox_keys[values["key"]] = number

            def undo(key: str = values["key"]) -> None:
                self._d.outbox.pop()
                del self._d.outbox_keys[key]
            self._undo.append(undo)

    def mark_sent(self, keys: Sequence[str], at: datetime) -> int:
        sent = 0
        for key in keys:
            number = self._d.outbox_keys.get(key)
            if number is None or self._d.outbox[number]["sent_at"] is not None:
                continue
            message = self._d.outbox[number]
            message["sent_at"] = _utc(at)
            self._undo.append(partial(message.update, sent_at=None))
            sent += 1
        return sent

    def append_events(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for values in rows:
            number = len(self._d.events)
            event = {"id": number + 1, "dossier_id": values["dossier_id"],
                     "at": _utc(values["at"]),
                     "kind": values["kind"], "step": values["step"], "actor": values["actor"],
                     "agency": values["agency"], "detail": _copy(values["detail"]),
                     "version": values["version"]}
            self._d.events.append(event)
            self._d.events_of.setdefault(event["dossier_id"], []).append(number)

            def undo(dossier_id: int = event["dossier_id"]) -> None:
                self._d.events.pop()
                self._d.events_of[dossier_id].pop()
            self._undo.append(undo)
