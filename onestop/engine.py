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
from typing import Any, Callable, Iterable, Mapping, Sequence

from .bpmn import Instance, ProcessModel, StepInfo, model_from_body
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
from .sla import Regimes, appointment
from .model import (
    Channel,
    Dossier,
    DossierStatus,
    Event,
    EventKind,
    Officer,
    Task,
)
from .store import Store, Tx
from .store.hotpath import HotPath, TaskRow

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
        self._models: dict[int, ProcessModel] = {}
        self._spec_ids: dict[str, int] = {}
        self._instances: OrderedDict[int, tuple[int, Instance]] = OrderedDict()
        self._cache_size = cache_size
        now = self.clock.now()
        with self._store.write() as tx:
            for model in self.library.models.values():
                spec_id = tx.ensure_spec(model.spec_hash, model.process_id, model.file,
                                         model.body, now)
                self._models[spec_id] = model
                self._spec_ids[model.spec_hash] = spec_id

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
        spec_id = self._spec_ids[model.spec_hash]
        now = self.clock.now()
        with self._store.command() as tx:
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
            day = now.astimezone(VIETNAM_TZ).strftime("%y%m%d")
            code = f"{desk}-{day}-{tx.next_sequence(f'{desk}:{day}'):04d}"
            missing = [c.code for c in proc.components if c.required and c.code not in handed_in]
            instance, passed = Instance.start(model, {
                "procedure": proc.code, "channel": int(channel),
                "components": handed_in, "missing_components": missing,
            })
            regime = self._regimes().at(now)
            context = _Context(code, desk, resolver, proc.agencies,
                               DossierStatus.NEWLY_REGISTERED,
                               self._appointer(desk, regime.code, proc.code), None)
            progress = _progress(context, instance, passed, now, actor=actor, completed=None,
                                 was_open=())
            info = {"applicant": dict(applicant), "components": handed_in,
                    "agencies": dict(proc.agencies)}
            values = {
                "code": code, "procedure": proc.code,
                "spec_id": spec_id,
                "status": int(progress.status), "channel": int(channel),
                "desk_agency": desk, "resolving_agency": resolver, "received_at": now,
                "received_by": actor, "finished_at": now if progress.finished else None,
                "regime": regime.code, "appointment_at": progress.appointment_at,
                "info": info, "state": instance.dump(),
            }
            dossier_id = tx.insert_dossier(values)
            received = _event(now, EventKind.RECEIVED, None, actor, desk,
                              {"procedure": proc.code, "channel": int(channel),
                               "components": handed_in})
            tx.append_events([{**e, "dossier_id": dossier_id}
                              for e in (received, *progress.events)])
            tx.insert_tasks([{**t, "dossier_id": dossier_id} for t in progress.new_tasks])
            self._remember(dossier_id, 1, instance)
            return self._snapshot(values, [_NewTask(t, code) for t in progress.new_tasks], model)

    def claim(self, task_id: str, officer: str) -> Task:
        """Take a task into one's own hands (nhận xử lý); others no longer see it."""
        now = self.clock.now()
        with self._store.command() as tx:
            row = self._authorised_task(tx, task_id, officer)
            if row.claimed_by != officer:
                if not tx.claim_task(row.task_id, officer):
                    raise PermissionDenied(f"task {task_id} of dossier {row.code} is already "
                                           f"claimed by {row.claimed_by}")
                tx.append_events([{**_event(now, EventKind.CLAIMED, row.step, officer,
                                            row.agency, None), "dossier_id": row.id}])
            model = self._model(tx, row.spec_id)
        return self._task_of(model, row, claimed_by=officer)

    def release(self, task_id: str, officer: str) -> Task:
        """Hand a claimed task back to the pool of its role (trả lại)."""
        now = self.clock.now()
        with self._store.command() as tx:
            row = self._authorised_task(tx, task_id, officer)
            if not tx.release_task(row.task_id, officer):
                holder = f"claimed by {row.claimed_by}" if row.claimed_by else "not claimed"
                raise PermissionDenied(f"task {task_id} of dossier {row.code} is {holder}; "
                                       f"only its holder can hand it back")
            tx.append_events([{**_event(now, EventKind.RELEASED, row.step, officer,
                                        row.agency, None), "dossier_id": row.id}])
            model = self._model(tx, row.spec_id)
        return self._task_of(model, row, claimed_by=None)

    def complete(self, task_id: str, officer: str,
                 data: Mapping[str, Any] | None = None) -> Dossier:
        """Complete a task with its form data and move the dossier on.

        The officer must hold the task's role in its agency, and the task must not be
        claimed by someone else. ``data`` must give every required form field of the
        step (with a value among its choices, where it has choices).
        """
        data = dict(data or {})
        now = self.clock.now()
        touched: int | None = None
        try:
            with self._store.command() as tx:
                row = self._authorised_task(tx, task_id, officer)
                clerk = officer
                if row.claimed_by not in (None, clerk):
                    raise PermissionDenied(f"task {task_id} of dossier {row.code} is "
                                           f"claimed by {row.claimed_by}")
                model = self._model(tx, row.spec_id)
                _validate_form(_find_step(model, row.step), data, row.code)
                touched = row.id
                instance = self._instance(row, model)
                was_open = instance.open_task_ids()
                try:
                    passed = instance.complete(row.task_id, data)
                except ProcessError as exc:
                    raise ProcessError(exc.reason, dossier=row.code,
                                       element=exc.element) from None
                context = _Context(row.code, row.desk_agency, row.resolving_agency,
                                   row.info.get("agencies", {}), DossierStatus(row.status),
                                   self._appointer(row.desk_agency, row.regime, row.procedure),
                                   row.appointment_at)
                progress = _progress(context, instance, passed, now, actor=clerk,
                                     completed=row, was_open=was_open)
                done = _event(now, EventKind.COMPLETED, row.step, clerk, row.agency,
                              data or None)
                tx.delete_task(row.task_id)
                for stale in progress.gone:
                    tx.delete_task(stale)
                state = instance.dump()
                finished_at = now if progress.finished else None
                version = tx.update_dossier(row.id, row.version, int(progress.status), state,
                                            finished_at, progress.appointment_at)
                tx.append_events([{**e, "dossier_id": row.id} for e in (done, *progress.events)])
                tx.insert_tasks([{**t, "dossier_id": row.id} for t in progress.new_tasks])
                self._remember(row.id, version, instance)
                values = dict(row.dossier(), status=int(progress.status), state=state,
                              finished_at=finished_at, appointment_at=progress.appointment_at)
                still_open = was_open - {row.task_id} - set(progress.gone)
                # Sequential flows (the usual case): what is open now is what just opened.
                open_rows = tx.open_tasks(row.id) if still_open else \
                    [_NewTask(t, row.code) for t in progress.new_tasks]
                return self._snapshot(values, open_rows, model)
        except BaseException:
            # The cached workflow may hold changes the database never got.
            if touched is not None:
                self._instances.pop(touched, None)
            raise

    # -- queries -------------------------------------------------------------------
    def dossier(self, code: str) -> Dossier:
        """A snapshot of a dossier: status, open steps and who holds them."""
        with self._store.read() as tx:
            row = self._dossier_row(tx, code)
            return self._snapshot(row._mapping, tx.open_tasks(row.id),
                                  self._model(tx, row.spec_id))

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
            return [self._task(tx, r) for r in tx.inbox(clerk.id, pairs)]

    def task(self, task_id: str) -> Task:
        """One open task by id."""
        with self._store.read() as tx:
            row = tx.task(str(task_id))
            if row is None:
                raise TaskNotFound(f"no open task with id {task_id!r} (completed and "
                                   f"cancelled tasks are in the dossier's history)")
            return self._task(tx, row)

    # -- internals -----------------------------------------------------------------
    def _officer(self, tx: Tx | HotPath, officer_id: str) -> Officer:
        found = tx.officer(officer_id) if isinstance(officer_id, str) else None
        if found is None:
            raise UnknownOfficer(f"no officer with id {officer_id!r} is registered")
        return found

    def _dossier_row(self, tx: Tx, code: str) -> Any:
        if not isinstance(code, str) or not _DOSSIER_CODE.match(code):
            raise DossierNotFound(f"{code!r} is not a dossier code (expected "
                                  f"DESK-YYMMDD-NNNN, e.g. AN-BINH-MC-250701-0001)")
        row = tx.dossier(code)
        if row is None:
            raise DossierNotFound(f"no dossier with code {code}")
        return row

    def _authorised_task(self, tx: HotPath, task_id: str, officer_id: str) -> TaskRow:
        row = tx.task_for(str(task_id), officer_id) if isinstance(officer_id, str) else None
        if row is None or row.officer_id is None:
            self._officer(tx, officer_id)          # raises UnknownOfficer when it is that
            raise TaskNotFound(f"no open task with id {task_id!r} (completed and cancelled "
                               f"tasks are in the dossier's history)")
        if row.held_role is None:
            raise PermissionDenied(f"officer {officer_id} does not hold the role {row.role!r} "
                                   f"in agency {row.agency}, which step {row.step} of dossier "
                                   f"{row.code} needs")
        return row

    def _model(self, tx: Tx | HotPath, spec_id: int) -> ProcessModel:
        model = self._models.get(spec_id)
        if model is None:
            found = tx.spec(spec_id)
            if found is None:
                raise ModelError(f"model {spec_id} is missing from the store")
            model = model_from_body(found[1])
            self._models[spec_id] = model
            self._spec_ids[model.spec_hash] = spec_id
        return model

    def _instance(self, row: TaskRow, model: ProcessModel) -> Instance:
        cached = self._instances.get(row.id)
        if cached is not None and cached[0] == row.version:
            self._instances.move_to_end(row.id)
            return cached[1]
        return Instance.restore(model, row.state)

    def _regimes(self) -> Regimes:
        if self.library.regimes is None:
            raise ModelError("the process library has no legal regimes (regimes.json)")
        return self.library.regimes

    def _appointer(self, desk: str, regime_code: str,
                   procedure: str) -> Callable[[datetime], datetime]:
        """How to set the appointment when the dossier is accepted at ``desk``."""
        def appoint(accepted: datetime) -> datetime:
            proc = self.library.catalog.procedure(procedure)
            return appointment(self.library.calendars.for_agency(desk),
                               self._regimes().get(regime_code), accepted, proc.legal_time)
        return appoint

    def _remember(self, dossier_id: int, version: int, instance: Instance) -> None:
        self._instances[dossier_id] = (version, instance)
        self._instances.move_to_end(dossier_id)
        while len(self._instances) > self._cache_size:
            self._instances.popitem(last=False)

    def _task(self, tx: Tx, row: Any) -> Task:
        step = _find_step(self._model(tx, row.spec_id), row.step)
        return Task(id=row.id, dossier_code=row.dossier_code, step=row.step,
                    name=step.name if step else row.step, role=row.role, agency=row.agency,
                    ready_at=_local(row.ready_at), claimed_by=row.claimed_by,
                    form=step.form if step else ())

    @staticmethod
    def _task_of(model: ProcessModel, row: TaskRow, *, claimed_by: str | None) -> Task:
        step = _find_step(model, row.step)
        return Task(id=row.task_id, dossier_code=row.code, step=row.step,
                    name=step.name if step else row.step, role=row.role, agency=row.agency,
                    ready_at=_local(row.ready_at), claimed_by=claimed_by,
                    form=step.form if step else ())

    def _snapshot(self, row: Mapping[str, Any], open_rows: Sequence[Any],
                  model: ProcessModel) -> Dossier:
        proc = self.library.catalog.procedures.get(row["procedure"])
        info = row["info"]
        open_tasks = []
        for task in open_rows:
            step = _find_step(model, task.step)
            open_tasks.append(Task(id=task.id, dossier_code=row["code"], step=task.step,
                                   name=step.name if step else task.step, role=task.role,
                                   agency=task.agency, ready_at=_local(task.ready_at),
                                   claimed_by=task.claimed_by,
                                   form=step.form if step else ()))
        return Dossier(
            code=row["code"], procedure=row["procedure"],
            procedure_name=proc.name if proc else row["procedure"],
            status=DossierStatus(row["status"]), channel=Channel(row["channel"]),
            desk_agency=row["desk_agency"], resolving_agency=row["resolving_agency"],
            received_at=_local(row["received_at"]), received_by=row["received_by"],
            applicant=info.get("applicant", {}), components=tuple(info.get("components", [])),
            process=model.process_id, spec_hash=model.spec_hash,
            finished_at=_local(row["finished_at"]) if row["finished_at"] else None,
            open_tasks=tuple(open_tasks), regime=row["regime"],
            appointment_at=_local(row["appointment_at"]) if row["appointment_at"] else None,
        )


class _Context:
    """What progress bookkeeping needs to know of a dossier."""

    def __init__(self, code: str, desk: str, resolver: str, slots: Mapping[str, str],
                 status: DossierStatus, appoint: Callable[[datetime], datetime],
                 appointment_at: datetime | None) -> None:
        self.code, self.desk, self.resolver = code, desk, resolver
        self.slots, self.status = dict(slots), status
        self.appoint, self.appointment_at = appoint, appointment_at

    def agency_for(self, step: StepInfo) -> str:
        slot = step.agency or "resolver"
        if slot == "desk":
            return self.desk
        if slot == "resolver":
            return self.resolver
        return self.slots.get(slot, slot)


class _NewTask:
    """A task row just written, read back without a query."""

    def __init__(self, values: Mapping[str, Any], dossier_code: str) -> None:
        self.id, self.step, self.role = values["id"], values["step"], values["role"]
        self.agency, self.claimed_by = values["agency"], None
        self.ready_at, self.dossier_code = values["ready_at"], dossier_code


class _Progress:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.new_tasks: list[dict[str, Any]] = []
        self.gone: list[str] = []
        self.status = DossierStatus.NEWLY_REGISTERED
        self.finished = False
        self.appointment_at: datetime | None = None


def _progress(dossier: _Context, instance: Instance, passed: Iterable[StepInfo], now: datetime,
              *, actor: str, completed: Any, was_open: Iterable[str]) -> _Progress:
    """What a start or a completion changed: new tasks, statuses, handovers, the end."""
    progress = _Progress()
    progress.appointment_at = dossier.appointment_at
    status = dossier.status

    def set_status(step: StepInfo) -> None:
        nonlocal status
        if step.status is not None and step.status != status:
            detail: dict[str, Any] = {"from": int(status), "to": step.status}
            if step.status == DossierStatus.RECEIVED and progress.appointment_at is None:
                # Accepted as complete: the receipt and appointment slip is issued now.
                progress.appointment_at = dossier.appoint(now)
                detail["appointment"] = progress.appointment_at.isoformat()
            progress.events.append(_event(now, EventKind.STATUS_CHANGED, step.id, actor, None,
                                          detail))
            status = DossierStatus(step.status)

    for step in passed:
        set_status(step)
    open_now = instance.open_tasks()
    known = set(was_open)
    if completed is not None:
        known.discard(completed.task_id)
    open_ids = {t.id for t in open_now}
    progress.gone = sorted(known - open_ids)
    for task in open_now:
        if task.id in known:
            continue
        agency = dossier.agency_for(task.step)
        progress.new_tasks.append({"id": task.id, "step": task.step.id,
                                   "role": task.step.role or "", "agency": agency,
                                   "claimed_by": None, "ready_at": now})
        progress.events.append(_event(now, EventKind.TASK_READY, task.step.id, None, agency, None))
        if completed is not None:
            progress.events.append(_event(now, EventKind.HANDED_OVER, completed.step, actor,
                                          completed.agency,
                                          {"to_step": task.step.id, "to_agency": agency,
                                           "to_role": task.step.role}))
        set_status(task.step)
    progress.finished = instance.completed
    if progress.finished:
        progress.events.append(_event(now, EventKind.FINISHED, None, actor, None,
                                      {"status": int(status)}))
    progress.status = status
    return progress


def _find_step(model: ProcessModel, step_id: str) -> StepInfo | None:
    for per_process in model.steps.values():
        if step_id in per_process:
            return per_process[step_id]
    return None


def _event(at: datetime, kind: EventKind, step: str | None, actor: str | None,
           agency: str | None, detail: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"at": at, "kind": kind.value, "step": step, "actor": actor, "agency": agency,
            "detail": dict(detail) if detail else None}


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
