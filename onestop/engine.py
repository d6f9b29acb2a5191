"""The engine: the public facade a portal backend calls.

Each command (receive, claim, release, complete, add_officer) runs in one database
transaction: either everything it changes is stored — the dossier, its tasks, its events —
or nothing is. Queries (dossier, history, inbox, task) read committed data only.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .bpmn import Instance, OpenTask, ProcessModel, StepInfo, model_from_body
from .clock import VIETNAM_TZ, Clock, SystemClock
from .errors import (
    DossierNotFound,
    InvalidInput,
    ModelError,
    PermissionDenied,
    ProcessError,
    TaskNotFound,
    UnknownOfficer,
)
from .library import Library, load_library
from .model import (
    Channel,
    Dossier,
    DossierStatus,
    Event,
    EventKind,
    FormField,
    Officer,
    Task,
    TaskState,
)
from .store import Store, Tx

#: The role that receives dossiers at a one-stop desk.
RECEIVING_ROLE = "receiving_officer"
#: Who acts when a dossier arrives without an officer (online or postal intake).
PORTAL_ACTOR = "portal"
#: Process variables the engine sets; completion data may not overwrite them.
RESERVED_FIELDS = frozenset({"procedure", "channel", "components", "missing_components"})

_DOSSIER_CODE = re.compile(r"^(?P<desk>.+)-(?P<day>\d{6})-(?P<seq>\d{4,})$")
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_OFFICER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")


class Engine:
    """Runs dossiers through BPMN internal procedures, durably.

    >>> engine = Engine("sqlite:///onestop.db")            # doctest: +SKIP
    >>> dossier = engine.receive("2.000815", applicant={"name": "Nguyễn Văn A"},
    ...                          components=["ban-chinh"], officer="tn.an")  # doctest: +SKIP

    ``database`` is a SQLAlchemy URL or a SQLite file path. ``library`` is a folder of
    BPMN files with its ``catalog.json`` (default: the library shipped with onestop) or
    an already loaded :class:`~onestop.library.Library`. ``clock`` tells the time (default:
    the system clock); pass a :class:`~onestop.clock.ManualClock` in tests and
    simulations.
    """

    def __init__(self, database: str = "onestop.db", *, library: str | Path | Library | None = None,
                 clock: Clock | None = None, durability: str = "full",
                 cache_size: int = 512) -> None:
        self.clock: Clock = clock or SystemClock()
        self.library = library if isinstance(library, Library) else load_library(library)
        self._store = Store(database, durability=durability)
        self._models: dict[str, ProcessModel] = {}
        self._instances: OrderedDict[int, tuple[int, Instance]] = OrderedDict()
        self._cache_size = cache_size
        now = self.clock.now()
        with self._store.write() as tx:
            for model in self.library.models.values():
                tx.ensure_spec(model.spec_hash, model.process_id, model.file, model.body, now)
                self._models[model.spec_hash] = model

    # -- lifecycle -----------------------------------------------------------------
    def close(self) -> None:
        """Release the database connections."""
        self._instances.clear()
        self._store.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- officers ------------------------------------------------------------------
    def add_officer(self, officer: Officer) -> Officer:
        """Register an officer, or replace the name and roles of an existing one."""
        if not isinstance(officer, Officer) or not _OFFICER_ID.match(officer.id):
            raise InvalidInput(f"officer id {getattr(officer, 'id', officer)!r} must be letters, "
                               f"digits, '.', '-' or '_'")
        if not officer.name.strip():
            raise InvalidInput(f"officer {officer.id}: name is empty")
        for agency in officer.roles:
            self.library.catalog.agency(agency)
        with self._store.write() as tx:
            tx.put_officer(officer)
        return officer

    def officer(self, officer_id: str) -> Officer:
        """The registered officer with this id; :class:`UnknownOfficer` otherwise."""
        with self._store.read() as tx:
            return self._officer(tx, officer_id)

    # -- commands ------------------------------------------------------------------
    def receive(self, procedure: str, *, applicant: Mapping[str, Any],
                components: Sequence[str] = (), channel: Channel | int = Channel.IN_PERSON,
                officer: str | None = None, desk: str | None = None,
                resolving_agency: str | None = None) -> Dossier:
        """Receive a dossier (tiếp nhận hồ sơ) for a procedure and start its process.

        ``components`` are the codes of the components handed in. An in-person dossier
        is received by ``officer``, who must hold the receiving role at ``desk`` (the
        desk defaults to the officer's only desk). Online and postal dossiers may come
        without an officer; then ``desk`` is required. Returns the new dossier, whose
        ``code`` identifies it from now on.
        """
        catalog = self.library.catalog
        proc = catalog.procedure(procedure)
        try:
            channel = Channel(channel)
        except ValueError:
            raise InvalidInput(f"channel {channel!r} must be 1 (in person), 2 (online) or "
                               f"3 (postal)") from None
        if not isinstance(applicant, Mapping):
            raise InvalidInput("applicant must be a mapping of fields")
        _ensure_storable("applicant", dict(applicant))
        if isinstance(components, str) or not all(isinstance(c, str) for c in components):
            raise InvalidInput("components must be a list of component codes")
        handed_in = list(dict.fromkeys(components))
        for code in handed_in:
            if proc.component(code) is None:
                known = ", ".join(c.code for c in proc.components) or "none"
                raise InvalidInput(f"procedure {proc.code} has no component {code!r} "
                                   f"(its components: {known})")
        resolver = resolving_agency or proc.agency
        catalog.agency(resolver)
        model = self.library.model_for(proc)
        now = self.clock.now()
        with self._store.write() as tx:
            actor = PORTAL_ACTOR
            if officer is not None:
                clerk = self._officer(tx, officer)
                if desk is None:
                    desks = sorted(a for a, roles in clerk.roles.items() if RECEIVING_ROLE in roles)
                    if len(desks) != 1:
                        raise InvalidInput(f"officer {officer} receives at {len(desks)} desks; "
                                           f"say which with desk=")
                    desk = desks[0]
                if not clerk.has_role(desk, RECEIVING_ROLE):
                    raise PermissionDenied(f"officer {officer} does not hold the role "
                                           f"{RECEIVING_ROLE!r} at {desk}")
                actor = clerk.id
            elif channel is Channel.IN_PERSON:
                raise InvalidInput("an in-person dossier is received by an officer: pass officer=")
            if desk is None:
                raise InvalidInput("desk= is required when no officer receives the dossier")
            catalog.agency(desk)
            local = now.astimezone(VIETNAM_TZ)
            day = local.strftime("%y%m%d")
            code = f"{desk}-{day}-{tx.next_sequence(f'{desk}:{day}'):04d}"
            missing = [c.code for c in proc.components if c.required and c.code not in handed_in]
            instance, passed = Instance.start(model, {
                "procedure": proc.code, "channel": int(channel),
                "components": handed_in, "missing_components": missing,
            })
            info = {"applicant": dict(applicant), "components": handed_in,
                    "agencies": dict(proc.agencies)}
            dossier_id = tx.insert_dossier({
                "code": code, "procedure": proc.code, "spec_hash": model.spec_hash,
                "status": int(DossierStatus.NEWLY_REGISTERED), "channel": int(channel),
                "desk_agency": desk, "resolving_agency": resolver, "received_at": now,
                "received_by": actor, "finished_at": None, "info": info, "state": None,
            })
            tx.append_events([_event(dossier_id, now, EventKind.RECEIVED, None, actor, desk,
                                     {"procedure": proc.code, "channel": int(channel),
                                      "components": handed_in})])
            dossier = _DossierRow(dossier_id, code, desk, resolver, proc.agencies,
                                  DossierStatus.NEWLY_REGISTERED, 1)
            self._record_progress(tx, dossier, instance, passed, now, actor=actor,
                                  completed=None, previously_open=[])
        return self.dossier(code)

    def claim(self, task_id: str, officer: str) -> Task:
        """Take a task into one's own hands (nhận xử lý); others no longer see it."""
        now = self.clock.now()
        with self._store.write() as tx:
            row, clerk = self._authorised_task(tx, task_id, officer)
            if row.claimed_by == clerk.id:
                return _task(row, self._form_of(tx, row))
            if not tx.claim_task(task_id, clerk.id):
                raise PermissionDenied(f"task {task_id} of dossier {row.dossier_code} is "
                                       f"already claimed by {row.claimed_by}")
            tx.append_events([_event(row.dossier_id, now, EventKind.CLAIMED, row.step,
                                     clerk.id, row.agency, None)])
            return _task(tx.task(task_id), self._form_of(tx, row))

    def release(self, task_id: str, officer: str) -> Task:
        """Hand a claimed task back to the pool of its role (trả lại)."""
        now = self.clock.now()
        with self._store.write() as tx:
            row, clerk = self._authorised_task(tx, task_id, officer)
            if not tx.release_task(task_id, clerk.id):
                holder = f"claimed by {row.claimed_by}" if row.claimed_by else "not claimed"
                raise PermissionDenied(f"task {task_id} of dossier {row.dossier_code} is "
                                       f"{holder}; only its holder can hand it back")
            tx.append_events([_event(row.dossier_id, now, EventKind.RELEASED, row.step,
                                     clerk.id, row.agency, None)])
            return _task(tx.task(task_id), self._form_of(tx, row))

    def complete(self, task_id: str, officer: str, data: Mapping[str, Any] | None = None) -> Dossier:
        """Complete a task with its form data and move the dossier on.

        The officer must hold the task's role in its agency, and the task must not be
        claimed by someone else. ``data`` must give every required form field of the
        step (with a value among its choices, where it has choices).
        """
        data = dict(data or {})
        now = self.clock.now()
        touched: int | None = None
        try:
            with self._store.write() as tx:
                row, clerk = self._authorised_task(tx, task_id, officer)
                if row.claimed_by not in (None, clerk.id):
                    raise PermissionDenied(f"task {task_id} of dossier {row.dossier_code} is "
                                           f"claimed by {row.claimed_by}")
                dossier_row = tx.dossier_by_id(row.dossier_id, lock=True)
                assert dossier_row is not None
                model = self._model(tx, dossier_row.spec_hash)
                _validate_form(self._step_anywhere(model, row.step), data, row.dossier_code)
                previously_open = tx.open_tasks(row.dossier_id)
                touched = row.dossier_id
                instance = self._instance(tx, dossier_row)
                try:
                    passed = instance.complete(task_id, data)
                except ProcessError as exc:
                    raise ProcessError(exc.reason, dossier=row.dossier_code,
                                       element=exc.element) from None
                tx.close_task(task_id, TaskState.COMPLETED.value, now, clerk.id)
                tx.append_events([_event(row.dossier_id, now, EventKind.COMPLETED, row.step,
                                         clerk.id, row.agency, data or None)])
                self._record_progress(tx, _DossierRow.of(dossier_row), instance, passed, now,
                                      actor=clerk.id, completed=row,
                                      previously_open=previously_open)
        except BaseException:
            # The cached workflow may hold changes the database never got.
            if touched is not None:
                self._instances.pop(touched, None)
            raise
        return self.dossier(row.dossier_code)

    # -- queries -------------------------------------------------------------------
    def dossier(self, code: str) -> Dossier:
        """A snapshot of a dossier: status, open steps and who holds them."""
        with self._store.read() as tx:
            row = self._dossier_row(tx, code)
            open_rows = tx.open_tasks(row.id)
            model = self._model(tx, row.spec_hash)
        proc = self.library.catalog.procedures.get(row.procedure)
        return Dossier(
            code=row.code, procedure=row.procedure,
            procedure_name=proc.name if proc else row.procedure,
            status=DossierStatus(row.status), channel=Channel(row.channel),
            desk_agency=row.desk_agency, resolving_agency=row.resolving_agency,
            received_at=_local(row.received_at), received_by=row.received_by,
            applicant=row.info.get("applicant", {}),
            components=tuple(row.info.get("components", [])),
            process=model.process_id, spec_hash=row.spec_hash,
            finished_at=_local(row.finished_at) if row.finished_at else None,
            open_tasks=tuple(_task(t, self._form_in(model, t.step)) for t in open_rows),
        )

    def history(self, code: str) -> list[Event]:
        """Every event of a dossier, oldest first."""
        with self._store.read() as tx:
            row = self._dossier_row(tx, code)
            return [Event(dossier_code=row.code, at=_local(e.at), kind=EventKind(e.kind),
                          step=e.step, actor=e.actor, agency=e.agency, detail=e.detail or {})
                    for e in tx.events(row.id)]

    def inbox(self, officer: str) -> list[Task]:
        """Open tasks the officer may act on: unclaimed ones of their roles in their
        agencies, and the ones they have claimed. Oldest first."""
        with self._store.read() as tx:
            clerk = self._officer(tx, officer)
            pairs = [(agency, role) for agency, roles in clerk.roles.items() for role in roles]
            return [_task(r, self._form_of(tx, r)) for r in tx.inbox(clerk.id, pairs)]

    def task(self, task_id: str) -> Task:
        """One task by id."""
        with self._store.read() as tx:
            row = tx.task(str(task_id))
            if row is None:
                raise TaskNotFound(f"no task with id {task_id!r}")
            return _task(row, self._form_of(tx, row))

    # -- internals -----------------------------------------------------------------
    def _officer(self, tx: Tx, officer_id: str) -> Officer:
        found = tx.officer(officer_id) if isinstance(officer_id, str) else None
        if found is None:
            raise UnknownOfficer(f"no officer with id {officer_id!r} is registered")
        return found

    def _dossier_row(self, tx: Tx, code: str) -> Any:
        if not isinstance(code, str) or not _DOSSIER_CODE.match(code):
            raise DossierNotFound(f"{code!r} is not a dossier code (expected "
                                  f"DESK-YYMMDD-NNNN, e.g. H12.XA-AN-BINH-250701-0001)")
        row = tx.dossier(code)
        if row is None:
            raise DossierNotFound(f"no dossier with code {code}")
        return row

    def _authorised_task(self, tx: Tx, task_id: str, officer_id: str) -> tuple[Any, Officer]:
        clerk = self._officer(tx, officer_id)
        row = tx.task(str(task_id), lock=True)
        if row is None:
            raise TaskNotFound(f"no task with id {task_id!r}")
        if row.state not in ("ready", "claimed"):
            raise TaskNotFound(f"task {task_id} of dossier {row.dossier_code} is {row.state}, "
                               f"not open")
        if not clerk.has_role(row.agency, row.role):
            raise PermissionDenied(f"officer {clerk.id} does not hold the role {row.role!r} in "
                                   f"agency {row.agency}, which step {row.step} of dossier "
                                   f"{row.dossier_code} needs")
        return row, clerk

    def _model(self, tx: Tx, spec_hash: str) -> ProcessModel:
        model = self._models.get(spec_hash)
        if model is None:
            body = tx.spec_body(spec_hash)
            if body is None:
                raise ModelError(f"model {spec_hash} is missing from the store")
            model = model_from_body(body)
            self._models[spec_hash] = model
        return model

    def _instance(self, tx: Tx, row: Any) -> Instance:
        cached = self._instances.get(row.id)
        if cached is not None and cached[0] == row.version:
            self._instances.move_to_end(row.id)
            return cached[1]
        return Instance.restore(self._model(tx, row.spec_hash), row.state)

    def _remember(self, dossier_id: int, version: int, instance: Instance) -> None:
        self._instances[dossier_id] = (version, instance)
        self._instances.move_to_end(dossier_id)
        while len(self._instances) > self._cache_size:
            self._instances.popitem(last=False)

    def _form_of(self, tx: Tx, row: Any) -> tuple[FormField, ...]:
        return self._form_in(self._model(tx, row.spec_hash), row.step)

    def _form_in(self, model: ProcessModel, step_id: str) -> tuple[FormField, ...]:
        step = self._step_anywhere(model, step_id)
        return step.form if step is not None else ()

    @staticmethod
    def _step_anywhere(model: ProcessModel, step_id: str) -> StepInfo | None:
        for per_process in model.steps.values():
            if step_id in per_process:
                return per_process[step_id]
        return None

    def _record_progress(self, tx: Tx, dossier: "_DossierRow", instance: Instance,
                         passed: Iterable[StepInfo], now: datetime, *, actor: str,
                         completed: Any, previously_open: Sequence[Any]) -> None:
        """Store what a start or completion changed: tasks, statuses, handovers, state."""
        events: list[dict[str, Any]] = []
        status = dossier.status
        for step in passed:
            if step.status is not None and step.status != status:
                events.append(_event(dossier.id, now, EventKind.STATUS_CHANGED, step.id,
                                     actor, None, {"from": int(status), "to": step.status}))
                status = DossierStatus(step.status)
        open_now = instance.open_tasks()
        open_ids = {t.id for t in open_now}
        known = {r.id for r in previously_open}
        if completed is not None:
            known.discard(completed.id)
        for stale in known - open_ids:
            tx.close_task(stale, TaskState.CANCELLED.value, now, None)
        new_rows = []
        for task in open_now:
            if task.id in known:
                continue
            agency = dossier.agency_for(task.step)
            new_rows.append({"id": task.id, "dossier_id": dossier.id, "step": task.step.id,
                             "name": task.step.name, "role": task.step.role or "",
                             "agency": agency, "state": TaskState.READY.value,
                             "claimed_by": None, "ready_at": now, "closed_at": None,
                             "closed_by": None})
            events.append(_event(dossier.id, now, EventKind.TASK_READY, task.step.id, None,
                                 agency, {"role": task.step.role}))
            if completed is not None:
                events.append(_event(dossier.id, now, EventKind.HANDED_OVER, completed.step,
                                     actor, completed.agency,
                                     {"to_step": task.step.id, "to_agency": agency,
                                      "to_role": task.step.role}))
            if task.step.status is not None and task.step.status != status:
                events.append(_event(dossier.id, now, EventKind.STATUS_CHANGED, task.step.id,
                                     actor, None, {"from": int(status), "to": task.step.status}))
                status = DossierStatus(task.step.status)
        tx.insert_tasks(new_rows)
        finished = instance.completed
        if finished:
            events.append(_event(dossier.id, now, EventKind.FINISHED, None, actor, None,
                                 {"status": int(status)}))
        tx.append_events(events)
        values: dict[str, Any] = {"status": int(status), "state": instance.dump()}
        if finished:
            values["finished_at"] = now
        version = tx.update_dossier(dossier.id, dossier.version, values)
        self._remember(dossier.id, version, instance)


class _DossierRow:
    """The few dossier columns progress bookkeeping needs."""

    def __init__(self, id: int, code: str, desk: str, resolver: str,
                 slots: Mapping[str, str], status: DossierStatus, version: int) -> None:
        self.id, self.code, self.desk, self.resolver = id, code, desk, resolver
        self.slots, self.status, self.version = dict(slots), status, version

    @classmethod
    def of(cls, row: Any) -> "_DossierRow":
        return cls(row.id, row.code, row.desk_agency, row.resolving_agency,
                   row.info.get("agencies", {}), DossierStatus(row.status), row.version)

    def agency_for(self, step: StepInfo) -> str:
        slot = step.agency or "resolver"
        if slot == "desk":
            return self.desk
        if slot == "resolver":
            return self.resolver
        return self.slots.get(slot, slot)


def _event(dossier_id: int, at: datetime, kind: EventKind, step: str | None,
           actor: str | None, agency: str | None, detail: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"dossier_id": dossier_id, "at": at, "kind": kind.value, "step": step,
            "actor": actor, "agency": agency, "detail": dict(detail) if detail else None}


def _task(row: Any, form: tuple[FormField, ...]) -> Task:
    return Task(id=row.id, dossier_code=row.dossier_code, step=row.step, name=row.name,
                role=row.role, agency=row.agency, state=TaskState(row.state),
                ready_at=_local(row.ready_at), claimed_by=row.claimed_by,
                closed_at=_local(row.closed_at) if row.closed_at else None,
                closed_by=row.closed_by, form=form)


def _local(instant: datetime) -> datetime:
    return instant.astimezone(VIETNAM_TZ)


def _ensure_storable(name: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} cannot be stored: {exc} (use text, numbers, true/false, "
                           f"lists and objects)") from None


def _validate_form(step: StepInfo | None, data: dict[str, Any], dossier_code: str) -> None:
    for key, value in data.items():
        if not isinstance(key, str) or not _FIELD_NAME.match(key):
            raise InvalidInput(f"dossier {dossier_code}: field name {key!r} must start with a "
                               f"letter and use letters, digits and '_'")
        if key in RESERVED_FIELDS:
            raise InvalidInput(f"dossier {dossier_code}: field {key!r} is set by the engine "
                               f"and cannot be changed by a form")
        _ensure_storable(f"dossier {dossier_code}: field {key!r}", value)
    if step is None:
        return
    for form_field in step.form:
        if form_field.name not in data or data[form_field.name] in (None, ""):
            if form_field.required:
                hint = f" (one of: {', '.join(form_field.choices)})" if form_field.choices else ""
                raise InvalidInput(f"dossier {dossier_code}: step {step.id} needs field "
                                   f"{form_field.name!r}{hint}")
            continue
        if form_field.choices and data[form_field.name] not in form_field.choices:
            raise InvalidInput(f"dossier {dossier_code}: field {form_field.name!r} of step "
                               f"{step.id} is {data[form_field.name]!r}; allowed: "
                               f"{', '.join(form_field.choices)}")
