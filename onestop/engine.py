"""The engine: the public facade a portal backend calls.

Each command (receive, claim, release, complete, message, add_officer) runs in one database
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

from .bpmn import Instance, ProcessModel, StepInfo, WaitingTimer, evaluate, model_from_body
from .bpmn.extensions import CUTOFF
from .bpmn.runtime import Connector, script_engine
from .bpmn.timers import IsoDuration, literal, read_value, uses_sla
from .clock import VIETNAM_TZ, Clock, SystemClock
from .duration import Duration
from .errors import (
    DossierNotFound,
    InvalidInput,
    ModelError,
    OnestopError,
    PermissionDenied,
    ProcessError,
    RuleViolation,
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
    FiredTimer,
    Officer,
    Task,
)
from .sla import (
    Regime,
    Regimes,
    SlaReport,
    apology_due,
    appointment,
    assess,
    parse_new_appointment,
    resumed_appointment,
    step_deadline,
)
from .store import Store, Tx
from .store.hotpath import DossierRow, HotPath, TaskRow

#: The role that receives dossiers at a one-stop desk.
RECEIVING_ROLE = "receiving_officer"
#: Who acts when a dossier arrives without an officer (online or postal intake).
PORTAL_ACTOR = "portal"
#: Process variables the engine sets; completion data may not overwrite them.
RESERVED_FIELDS = frozenset({"procedure", "channel", "components", "missing_components",
                             "to_digitize", "reused", "fee_due"})
#: Form fields of the apology path: the responsible agency's reason and proposed date.
DELAY_REASON, NEW_APPOINTMENT = "delay_reason", "new_appointment"

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
    simulations. ``connectors`` maps the connector names the models' service tasks call
    (e.g. ``"payment.confirm"``) to functions: each gets a copy of the dossier's process
    data and returns a mapping merged into it (or None).
    """

    def __init__(self, database: str = "onestop.db", *, library: str | Path | Library | None = None,
                 clock: Clock | None = None, durability: str = "full",
                 cache_size: int = 512, due_soon: str | Duration = "1wd",
                 connectors: Mapping[str, Connector] | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        try:
            self.due_soon = due_soon if isinstance(due_soon, Duration) \
                else Duration.parse(due_soon)
        except ValueError as exc:
            raise InvalidInput(f"due_soon: {exc}") from None
        self.library = library if isinstance(library, Library) else load_library(library)
        for model in self.library.models.values():
            for name, element in model.connectors().items():
                if name not in (connectors or {}):
                    raise ModelError(f"service task calls connector {name!r}, which is not "
                                     f"registered: pass Engine(connectors={{{name!r}: ...}})",
                                     file=model.file, element=element)
        self._script = script_engine(connectors)
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
                resolving_agency: str | None = None, held: Sequence[str] = ()) -> Dossier:
        """Receive a dossier (tiếp nhận hồ sơ) for a procedure and start its process.

        ``components`` are the codes of the components handed in. An in-person dossier
        is received by ``officer``, who must hold the receiving role at ``desk`` (the
        desk defaults to the officer's only desk). Online and postal dossiers may come
        without an officer; then ``desk`` is required. Returns the new dossier, whose
        ``code`` identifies it from now on.

        Where it may be received: a procedure that is not boundary-free and lists
        ``desks`` in the catalogue is received only at those desks (elsewhere:
        :class:`RuleViolation`, and nothing is stored); a boundary-free procedure
        (không phụ thuộc địa giới hành chính) at any desk of the catalogue (an agency of
        kind ``desk``, or of no stated kind); a procedure without ``desks`` anywhere.
        Either way the dossier is resolved by ``resolving_agency``, by default the
        procedure's competent agency.

        ``held`` are codes of the procedure's components the state already holds (the
        national population database, the applicant's e-store): each must be marked
        ``reusable`` in the catalogue (:class:`InvalidInput` otherwise). They count as
        handed in and are not digitized again (tái sử dụng dữ liệu).

        The process starts with these variables (completion data cannot overwrite them):
        ``procedure`` (code), ``channel`` (1, 2, 3), ``components`` (handed in, then
        held), ``missing_components`` (required ones neither handed in nor held),
        ``to_digitize`` (handed-in components marked ``must_digitize`` that are not held,
        in catalogue order; none for an online dossier, whose components arrive as
        electronic documents: a model can skip its digitize step with a gateway on
        ``len(to_digitize) > 0``), ``reused`` (the held codes, in catalogue order) and
        ``fee_due`` (the procedure's fees in VND, 0 when free: a model can wait for the
        online payment with a gateway on ``fee_due > 0``).
        The ``received`` event records the desk, whether the procedure is boundary-free,
        and the held codes.
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
        if isinstance(held, str) or not all(isinstance(c, str) for c in held):
            raise InvalidInput("held must be a list of component codes")
        for code in dict.fromkeys(held):
            found = proc.component(code)
            if found is None:
                known = ", ".join(c.code for c in proc.components) or "none"
                raise InvalidInput(f"held component {code!r}: procedure {proc.code} has no "
                                   f"such component (its components: {known})")
            if not found.reusable:
                raise InvalidInput(f"held component {code!r} ({found.name}) of procedure "
                                   f"{proc.code} is not marked reusable in the catalogue: "
                                   f"the applicant hands it in")
        reused = [c.code for c in proc.components if c.code in held]
        to_digitize = [] if channel is Channel.ONLINE else [
            c.code for c in proc.components
            if c.must_digitize and c.code in handed_in and c.code not in reused]
        handed_in = list(dict.fromkeys([*handed_in, *held]))
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
            receiving = catalog.agency(desk)
            # Checked before the dossier takes a number: a refused receipt stores nothing.
            if proc.boundary_free and receiving.kind not in (None, "desk"):
                raise RuleViolation(f"procedure {proc.code} ({proc.name}) is boundary-free "
                                    f"and is received at any one-stop desk, but {desk} is a "
                                    f"{receiving.kind} agency, not a desk")
            if not proc.boundary_free and proc.desks and desk not in proc.desks:
                raise RuleViolation(f"procedure {proc.code} ({proc.name}) is not received "
                                    f"at desk {desk}: it is not boundary-free and is received "
                                    f"at {', '.join(proc.desks)}")
            day = now.astimezone(VIETNAM_TZ).strftime("%y%m%d")
            code = f"{desk}-{day}-{tx.next_sequence(f'{desk}:{day}'):04d}"
            missing = [c.code for c in proc.components if c.required and c.code not in handed_in]
            instance, passed = Instance.start(model, {
                "procedure": proc.code, "channel": int(channel),
                "components": handed_in, "missing_components": missing,
                "to_digitize": to_digitize, "reused": reused, "fee_due": proc.fee_total,
            }, self._script)
            regime = proc.effective_regime(self._regimes().at(now))
            context = _Context(self, code, desk, resolver, proc.agencies,
                               DossierStatus.NEWLY_REGISTERED, regime.code, proc.code,
                               None, None, None, tx, now)
            progress = _progress(context, instance, passed, now, actor=actor, completed=None,
                                 was_open=())
            info = {"applicant": dict(applicant), "components": handed_in,
                    "agencies": dict(proc.agencies), "held": reused}
            values = {
                "code": code, "procedure": proc.code,
                "spec_id": spec_id,
                "status": int(progress.status), "channel": int(channel),
                "desk_agency": desk, "resolving_agency": resolver, "received_at": now,
                "received_by": actor, "finished_at": now if progress.finished else None,
                "regime": regime.code, "appointment_at": progress.appointment_at,
                "paused_at": progress.paused_at, "info": info, "state": instance.dump(),
            }
            dossier_id = tx.insert_dossier(values)
            received = _event(now, EventKind.RECEIVED, None, actor, desk,
                              {"procedure": proc.code, "channel": int(channel),
                               "components": handed_in, "desk": desk,
                               "boundary_free": proc.boundary_free, "held": reused})
            tx.append_events([{**e, "dossier_id": dossier_id}
                              for e in (received, *progress.events)])
            tx.insert_tasks([{**t, "dossier_id": dossier_id} for t in progress.new_tasks])
            tx.insert_timers([{**t, "dossier_id": dossier_id} for t in progress.new_timers])
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
                step = _find_step(model, row.step)
                _validate_form(step, data, row.code)
                touched = row.id
                instance = self._instance(row, model)
                context = self._context(row, tx, now)
                reappointment = None
                if step is not None and step.sla is not None:
                    reappointment = self._sla_step(tx, row, step, data, instance, context)
                was_open = instance.open_task_ids()
                was_timers = instance.timer_ids()
                # An optional field left blank is None in the process data, so
                # conditions can test it; the event log keeps what the officer gave.
                blanks = {f.name: None for f in (step.form if step else ())
                          if f.name not in data}
                try:
                    passed = instance.complete(row.task_id, {**blanks, **data})
                except ProcessError as exc:
                    raise ProcessError(exc.reason, dossier=row.code,
                                       element=exc.element) from None
                progress = _progress(context, instance, passed, now, actor=clerk,
                                     completed=row, was_open=was_open, was_timers=was_timers,
                                     reappointment=reappointment)
                done = _event(now, EventKind.COMPLETED, row.step, clerk, row.agency,
                              data or None)
                tx.delete_task(row.task_id)
                values = self._store_progress(tx, row, instance, progress, now, done)
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

    def message(self, code: str, name: str, *, officer: str | None = None,
                data: Mapping[str, Any] | None = None) -> Dossier:
        """Deliver the message ``name`` to dossier ``code`` and move the dossier on.

        Messages are what happens to a dossier outside the officers' inboxes: the
        applicant withdraws (rút hồ sơ) or asks where the dossier stands, the payment
        platform confirms a fee, a consulted agency answers. A model catches them with
        message events (boundary, intermediate catch, event-based gateway) and receive
        tasks, in the process or in its sub-processes and called processes; ``name`` is
        the ``name`` of the ``bpmn:message`` the event refers to.

        ``data`` (field names like form fields; the engine's own variables such as
        ``procedure`` cannot be set) becomes process variables from the catching event
        on, so conditions after it read them. ``officer``, when given, must be
        registered and is recorded as the actor; otherwise the portal is. Each event
        waiting for the message catches it; an interrupting boundary event cancels its
        activity's open tasks (``task_cancelled``), a non-interrupting one keeps
        waiting for the next message while its activity runs. A dossier that is not
        waiting for the message (finished, or no such event reached) is refused with
        :class:`RuleViolation` naming the messages it does wait for, and nothing is
        stored.
        """
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"message name {name!r} must be non-empty text")
        if data is not None and not isinstance(data, Mapping):
            raise InvalidInput("message data must be a mapping of fields")
        payload = dict(data or {})
        for key, value in payload.items():
            if not isinstance(key, str) or not _FIELD_NAME.match(key):
                raise InvalidInput(f"dossier {code}: message {name!r}: field name {key!r} "
                                   f"must start with a letter and use letters, digits and "
                                   f"'_'")
            if key in RESERVED_FIELDS:
                raise InvalidInput(f"dossier {code}: message {name!r}: field {key!r} is set "
                                   f"by the engine and cannot be changed by a message")
            _ensure_storable(f"dossier {code}: message {name!r}: field {key!r}", value)
        with self._store.read() as reader:
            dossier_id = self._dossier_row(reader, code).id
        now = self.clock.now()
        touched: int | None = None
        try:
            with self._store.command() as tx:
                actor = self._officer(tx, officer).id if officer is not None else PORTAL_ACTOR
                row = tx.dossier_by_id(dossier_id)
                if row is None:
                    raise DossierNotFound(f"no dossier with code {code}")
                model = self._model(tx, row.spec_id)
                instance = None if row.finished_at is not None else self._instance(row, model)
                waiting = instance.waiting_messages() if instance is not None else []
                if instance is None or name not in waiting:
                    state = "has finished" if instance is None else "is in progress"
                    raise RuleViolation(
                        f"dossier {row.code} {state} and is not waiting for message "
                        f"{name!r}; it waits for "
                        + (", ".join(repr(w) for w in waiting) if waiting else "no message"))
                catching = instance.message_steps(name)
                was_open = instance.open_task_ids()
                was_timers = instance.timer_ids()
                touched = row.id
                try:
                    passed = instance.deliver(name, payload)
                except ProcessError as exc:
                    raise ProcessError(exc.reason, dossier=row.code,
                                       element=exc.element) from None
                context = self._context(row, tx, now)
                progress = _progress(context, instance, passed, now, actor=actor,
                                     completed=None, was_open=was_open, was_timers=was_timers)
                step = catching[0] if catching else None
                received = _event(now, EventKind.MESSAGE_RECEIVED,
                                  step.id if step is not None else None, actor,
                                  context.agency_for(step) if step is not None else None,
                                  {"message": name, "data": payload})
                values = self._store_progress(tx, row, instance, progress, now, received)
                return self._snapshot(values, tx.open_tasks(row.id), model)
        except BaseException:
            # The cached workflow may hold changes the database never got.
            if touched is not None:
                self._instances.pop(touched, None)
            raise

    def fire_due_timers(self, *, limit: int | None = None) -> list[FiredTimer]:
        """Fire every timer due by the clock's now, oldest first, each in its own
        transaction, and move its dossier on; ``limit`` caps how many are fired.

        The due timers are found through an index, so a sweep costs time in proportion
        to the timers that are due, not to the dossiers in progress. A timer fires
        exactly once: a sweep running at the same time skips the ones already fired.
        A timer whose dossier cannot move on (a failing model expression) is reported
        with ``error`` and stays due; the other timers still fire.
        """
        now = self.clock.now()
        fired: list[FiredTimer] = []
        after: tuple[datetime, str] | None = None
        while limit is None or len(fired) < limit:
            batch = _TIMER_BATCH if limit is None else min(_TIMER_BATCH, limit - len(fired))
            with self._store.read() as tx:
                due = [(r.id, r.dossier_id, r.step, r.due_at)
                       for r in tx.due_timers(now, after, batch)]
            for timer_id, dossier_id, step, due_at in due:
                try:
                    code = self._fire(timer_id, dossier_id, step, due_at, now)
                except _TimerFailed as failed:
                    fired.append(FiredTimer(failed.code, step, _local(due_at), _local(now),
                                            str(failed.error)))
                    continue
                if code is not None:
                    fired.append(FiredTimer(code, step, _local(due_at), _local(now)))
            if len(due) < batch:
                break
            after = (due[-1][3], due[-1][0])
        return fired

    def _fire(self, timer_id: str, dossier_id: int, step: str, due_at: datetime,
              now: datetime) -> str | None:
        touched: int | None = None
        code = ""
        try:
            with self._store.command() as tx:
                row = tx.dossier_by_id(dossier_id)
                if row is None or not tx.delete_timer(timer_id):
                    return None  # fired by another sweep, or cancelled meanwhile
                code = row.code
                model = self._model(tx, row.spec_id)
                touched = row.id
                instance = self._instance(row, model)
                was_open = instance.open_task_ids()
                was_timers = instance.timer_ids() - {timer_id}
                try:
                    passed = instance.fire(timer_id)
                except ProcessError as exc:
                    raise ProcessError(exc.reason, dossier=row.code,
                                       element=exc.element or step) from None
                context = self._context(row, tx, now)
                progress = _progress(context, instance, passed, now, actor=None,
                                     completed=None, was_open=was_open, was_timers=was_timers)
                fired = _event(now, EventKind.TIMER_FIRED, step, None, None,
                               {"due": _local(due_at).isoformat()})
                self._store_progress(tx, row, instance, progress, now, fired)
                return row.code
        except BaseException as exc:
            if touched is not None:
                self._instances.pop(touched, None)
            if isinstance(exc, OnestopError):
                raise _TimerFailed(code, exc) from exc
            raise

    def _context(self, row: TaskRow | DossierRow, tx: HotPath, now: datetime) -> "_Context":
        return _Context(self, row.code, row.desk_agency, row.resolving_agency,
                        row.info.get("agencies", {}), DossierStatus(row.status), row.regime,
                        row.procedure, row.appointment_at, row.paused_at, row.id, tx, now)

    def _store_progress(self, tx: HotPath, row: TaskRow | DossierRow, instance: Instance,
                        progress: "_Progress", now: datetime,
                        first: dict[str, Any]) -> dict[str, Any]:
        """Write what a command changed; returns the dossier's new columns."""
        if progress.supplement_by is not None and tx.count_events(
                row.id, EventKind.SUPPLEMENT_REQUESTED.value, progress.supplement_by):
            raise RuleViolation(f"dossier {row.code}: {progress.supplement_by} has already "
                                f"asked the applicant for a supplement; an agency may ask "
                                f"once during resolution")
        for stale in progress.gone:
            tx.delete_task(stale)
        for gone in progress.gone_timers:
            tx.delete_timer(gone)
        for timer_id, due in progress.rescheduled:
            tx.reschedule_timer(timer_id, due)
        state = instance.dump()
        finished_at = now if progress.finished else None
        version = tx.update_dossier(row.id, row.version, int(progress.status), state,
                                    finished_at, progress.appointment_at, progress.paused_at)
        tx.append_events([{**e, "dossier_id": row.id} for e in (first, *progress.events)])
        tx.insert_tasks([{**t, "dossier_id": row.id} for t in progress.new_tasks])
        tx.insert_timers([{**t, "dossier_id": row.id} for t in progress.new_timers])
        self._remember(row.id, version, instance)
        return dict(row.dossier(), status=int(progress.status), state=state,
                    finished_at=finished_at, appointment_at=progress.appointment_at,
                    paused_at=progress.paused_at)

    def _sla_step(self, tx: HotPath, row: TaskRow, step: StepInfo, data: dict[str, Any],
                  instance: Instance,
                  context: "_Context") -> tuple[datetime, dict[str, Any]] | None:
        """Check the apology path's rules before a ``propose`` or ``apology`` step
        completes; for ``apology``, the re-appointment it makes."""
        values = {**instance.task_data(row.task_id), **data}
        regime = context.regime
        history = tx.events(row.id)
        apologies = [e for e in history if e[1] == EventKind.APPOINTMENT_SET.value
                     and (e[5] or {}).get("reason") == "apology"]
        if len(apologies) >= regime.max_reappointments:
            already = f"; the dossier was already re-appointed on " \
                f"{_local(apologies[-1][0]).date()}" if apologies else ""
            raise RuleViolation(f"dossier {row.code}: regime {regime.code} allows "
                                f"{regime.max_reappointments} re-appointment(s){already}")
        if row.appointment_at is None:
            raise RuleViolation(f"dossier {row.code} has no appointment yet; there is "
                                f"nothing to re-appoint")
        if NEW_APPOINTMENT not in values or not str(values.get(DELAY_REASON) or "").strip():
            raise InvalidInput(f"dossier {row.code}: step {step.id} needs the fields "
                               f"{DELAY_REASON!r} and {NEW_APPOINTMENT!r} (filled by the "
                               f"responsible agency)")
        calendar = context.calendar()
        try:
            new = parse_new_appointment(values[NEW_APPOINTMENT], calendar)
        except ValueError as exc:
            raise InvalidInput(f"dossier {row.code}: field {NEW_APPOINTMENT!r}: {exc}") \
                from None
        if new <= row.appointment_at:
            raise RuleViolation(f"dossier {row.code}: the new appointment {new.isoformat()} "
                                f"must be later than the current one "
                                f"{_local(row.appointment_at).isoformat()}")
        if step.sla != "apology":
            return None
        responsible = next((e[4] for e in reversed(history)
                            if e[1] == EventKind.COMPLETED.value and e[2] is not None
                            and getattr(_find_step(instance.model, e[2]), "sla", None)
                            == "propose"), None) or context.responsible()
        return new, {"appointment": new.isoformat(),
                     "previous": _local(row.appointment_at).isoformat(),
                     "reason": "apology", "delay_reason": str(values[DELAY_REASON]),
                     "responsible": responsible,
                     "form": regime.forms.get("apology")}

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
            return self._history(tx, self._dossier_row(tx, code))

    def sla(self, code: str, *, due_soon: str | Duration | None = None) -> SlaReport:
        """Where a dossier and each of its steps stand against their deadlines: finished
        early / on time / late, or in progress within time / due soon / overdue.

        Read from the event log, so the API, the forms and the reports agree.
        ``due_soon`` (default: the engine's, 1 working day) is how close to its deadline
        something must be to count as due soon."""
        with self._store.read() as tx:
            row = self._dossier_row(tx, code)
            events = self._history(tx, row)
        try:
            threshold = self.due_soon if due_soon is None else \
                (due_soon if isinstance(due_soon, Duration) else Duration.parse(due_soon))
        except ValueError as exc:
            raise InvalidInput(f"due_soon: {exc}") from None
        return self._assess(row.code, row.desk_agency, events, self.clock.now(), threshold)

    @staticmethod
    def _history(tx: Tx, row: Any) -> list[Event]:
        return _entries(row.code, ((e.at, e.kind, e.step, e.actor, e.agency, e.detail)
                                   for e in tx.events(row.id)))

    def _assess(self, code: str, desk: str, events: Sequence[Event], now: datetime,
                due_soon: Duration | None = None) -> SlaReport:
        return assess(code, events, _local(now), self.library.calendars, desk,
                      due_soon or self.due_soon)

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

    def _instance(self, row: TaskRow | DossierRow, model: ProcessModel) -> Instance:
        cached = self._instances.get(row.id)
        if cached is not None and cached[0] == row.version:
            self._instances.move_to_end(row.id)
            return cached[1]
        return Instance.restore(model, row.state, self._script)

    def _regimes(self) -> Regimes:
        if self.library.regimes is None:
            raise ModelError("the process library has no legal regimes (regimes.json)")
        return self.library.regimes

    def _remember(self, dossier_id: int, version: int, instance: Instance) -> None:
        self._instances[dossier_id] = (version, instance)
        self._instances.move_to_end(dossier_id)
        while len(self._instances) > self._cache_size:
            self._instances.popitem(last=False)

    def _task(self, tx: Tx, row: Any) -> Task:
        return _open_task(self._model(tx, row.spec_id), row.id, row.dossier_code, row,
                          row.claimed_by, row.due_at)

    @staticmethod
    def _task_of(model: ProcessModel, row: TaskRow, *, claimed_by: str | None) -> Task:
        return _open_task(model, row.task_id, row.code, row, claimed_by, row.task_due_at)

    def _snapshot(self, row: Mapping[str, Any], open_rows: Sequence[Any],
                  model: ProcessModel) -> Dossier:
        proc = self.library.catalog.procedures.get(row["procedure"])
        info = row["info"]
        open_tasks = [_open_task(model, task.id, row["code"], task, task.claimed_by,
                                 task.due_at) for task in open_rows]
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


#: Due timers read per query in a sweep.
_TIMER_BATCH = 500


class _TimerFailed(Exception):
    """A timer whose dossier could not move on (the sweep reports it and goes on)."""

    def __init__(self, code: str, error: OnestopError) -> None:
        super().__init__(str(error))
        self.code, self.error = code, error


class _Context:
    """What progress bookkeeping needs to know of a dossier, and the engine's rules for it
    (appointment, deadlines, timers, who is responsible for a delay)."""

    def __init__(self, engine: "Engine", code: str, desk: str, resolver: str,
                 slots: Mapping[str, str], status: DossierStatus, regime: str, procedure: str,
                 appointment_at: datetime | None, paused_at: datetime | None,
                 dossier_id: int | None, tx: HotPath, now: datetime) -> None:
        self.engine, self.code, self.desk, self.resolver = engine, code, desk, resolver
        self.slots, self.status = dict(slots), status
        self.regime_code, self.procedure = regime, procedure
        self.appointment_at, self.paused_at = appointment_at, paused_at
        self.dossier_id, self.tx, self.now = dossier_id, tx, now
        self._responsible: str | None = None

    @property
    def regime(self) -> Regime:
        regime = self.engine._regimes().get(self.regime_code)
        proc = self.engine.library.catalog.procedures.get(self.procedure)
        return proc.effective_regime(regime) if proc is not None else regime

    @property
    def legal_time(self) -> Duration | None:
        proc = self.engine.library.catalog.procedures.get(self.procedure)
        return proc.legal_time if proc is not None else None

    def calendar(self, agency: str | None = None) -> Any:
        return self.engine.library.calendars.for_agency(agency or self.desk)

    def agency_for(self, step: StepInfo) -> str:
        slot = step.agency or "resolver"
        if slot == "desk":
            return self.desk
        if slot == "resolver":
            return self.resolver
        if slot == "responsible":
            return self.responsible()
        return self.slots.get(slot, slot)

    def responsible(self) -> str:
        """The agency that owes the apology: whose steps ran furthest past their
        deadlines, else the resolving agency."""
        if self._responsible is None:
            found = None
            if self.dossier_id is not None:
                events = _entries(self.code, self.tx.events(self.dossier_id))
                found = self.engine._assess(self.code, self.desk, events,
                                            self.now).responsible_agency(self.now)
            self._responsible = found or self.resolver
        return self._responsible

    def appoint(self, accepted: datetime) -> datetime:
        legal = self.legal_time
        if legal is None:
            raise ModelError(f"procedure {self.procedure} is no longer in the catalogue")
        return appointment(self.calendar(), self.regime, accepted, legal)

    def resume(self, appointment_at: datetime, paused_at: datetime, now: datetime) -> datetime:
        legal = self.legal_time
        if legal is None:
            raise ModelError(f"procedure {self.procedure} is no longer in the catalogue")
        return resumed_appointment(self.calendar(), self.regime, appointment_at, paused_at,
                                   now, legal)

    def deadline(self, step: StepInfo, agency: str, ready: datetime) -> datetime | None:
        if not step.allotment:
            return None
        # A transfer under the cut-off rule: the dossier's cut-off, with the procedure's
        # override (the effective regime).
        cutoff = self.regime.transfer_cutoff if step.allotment == CUTOFF else None
        return step_deadline(self.calendar(agency), ready, step.allotment, self.legal_time,
                             cutoff)

    def timer_due(self, timer: WaitingTimer, now: datetime, appointment_at: datetime | None,
                  paused_at: datetime | None) -> datetime | None:
        """When a timer falls due: None while it depends on a paused service-level clock
        (or on an appointment not set yet)."""
        try:
            value = literal(timer.expression)
        except ValueError as exc:
            raise ProcessError(f"timer: {exc}", dossier=self.code, element=timer.step.id) \
                from None
        if value is None:
            scope = dict(timer.data)
            live = appointment_at if paused_at is None else None
            scope["appointment"] = live.isoformat() if live is not None else None
            scope["apology_due"] = apology_due(self.calendar(), self.regime, live).isoformat() \
                if live is not None else None
            try:
                result = evaluate(timer.expression, scope)
                if result is None:
                    return None
                value = read_value(result)
            except ProcessError as exc:
                raise ProcessError(exc.reason, dossier=self.code,
                                   element=timer.step.id) from None
            except ValueError as exc:
                raise ProcessError(f"timer: {exc}", dossier=self.code,
                                   element=timer.step.id) from None
        if isinstance(value, datetime):
            return value.astimezone(VIETNAM_TZ)
        calendar = self.calendar(self.agency_for(timer.step))
        if isinstance(value, Duration):
            return calendar.add(now, value)
        if (timer.step.clock or "working") == "calendar":
            return value.after(now.astimezone(VIETNAM_TZ))
        assert isinstance(value, IsoDuration)
        days, hours = value.in_working_time()
        due = calendar.add_working_days(now, days) if days else now
        return calendar.add_working_hours(due, hours) if hours else \
            (due if days else calendar.next_working_instant(now))


class _NewTask:
    """A task row just written, read back without a query."""

    def __init__(self, values: Mapping[str, Any], dossier_code: str) -> None:
        self.id, self.step, self.role = values["id"], values["step"], values["role"]
        self.agency, self.claimed_by = values["agency"], None
        self.ready_at, self.dossier_code = values["ready_at"], dossier_code
        self.due_at = values["due_at"]


class _Progress:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.new_tasks: list[dict[str, Any]] = []
        self.gone: list[str] = []
        self.new_timers: list[dict[str, Any]] = []
        self.gone_timers: list[str] = []
        self.rescheduled: list[tuple[str, datetime | None]] = []
        self.status = DossierStatus.NEWLY_REGISTERED
        self.finished = False
        self.appointment_at: datetime | None = None
        self.paused_at: datetime | None = None
        self.supplement_by: str | None = None


def _progress(dossier: _Context, instance: Instance, passed: Iterable[StepInfo], now: datetime,
              *, actor: str | None, completed: Any, was_open: Iterable[str],
              was_timers: Iterable[str] = (),
              reappointment: tuple[datetime, dict[str, Any]] | None = None) -> _Progress:
    """What a start, a completion or a timer changed: new tasks and timers, statuses,
    handovers, the service-level clock, the end."""
    progress = _Progress()
    progress.appointment_at = dossier.appointment_at
    progress.paused_at = dossier.paused_at
    status = dossier.status
    if reappointment is not None:
        progress.appointment_at, detail = reappointment
        progress.events.append(_event(now, EventKind.APPOINTMENT_SET, completed.step, actor,
                                      completed.agency, detail))

    def set_status(step: StepInfo) -> None:
        nonlocal status
        if step.status is None or step.status == status:
            return
        detail: dict[str, Any] = {"from": int(status), "to": step.status}
        if step.status == DossierStatus.RECEIVED and progress.appointment_at is None:
            # Accepted as complete: the receipt and appointment slip is issued now.
            progress.appointment_at = dossier.appoint(now)
            detail["appointment"] = progress.appointment_at.isoformat()
        progress.events.append(_event(now, EventKind.STATUS_CHANGED, step.id, actor, None,
                                      detail))
        if step.status == DossierStatus.SUPPLEMENT_REQUESTED \
                and progress.appointment_at is not None and progress.paused_at is None:
            # Asked for a supplement during resolution: the clock stops while the
            # applicant completes the dossier.
            progress.paused_at = now
            progress.supplement_by = completed.agency if completed is not None else None
            progress.events.append(_event(
                now, EventKind.SUPPLEMENT_REQUESTED, step.id, actor, progress.supplement_by,
                {"paused": True, "clock": dossier.regime.supplement_clock,
                 "appointment": progress.appointment_at.isoformat()}))
        elif status == DossierStatus.SUPPLEMENT_REQUESTED and progress.paused_at is not None \
                and progress.appointment_at is not None:
            previous = progress.appointment_at
            progress.appointment_at = dossier.resume(previous, progress.paused_at, now)
            progress.paused_at = None
            progress.events.append(_event(
                now, EventKind.APPOINTMENT_SET, step.id, actor, None,
                {"appointment": progress.appointment_at.isoformat(),
                 "previous": previous.isoformat(),
                 "reason": f"supplement_{dossier.regime.supplement_clock}"}))
        status = DossierStatus(step.status)

    for step in passed:
        set_status(step)
    open_now = instance.open_tasks()
    known = set(was_open)
    if completed is not None:
        known.discard(completed.task_id)
    open_ids = {t.id for t in open_now}
    progress.gone = sorted(known - open_ids)
    for gone in progress.gone:
        step = instance.step_of(gone)
        progress.events.append(_event(now, EventKind.TASK_CANCELLED,
                                      step.id if step else None, actor,
                                      dossier.agency_for(step) if step else None, None))
    for task in open_now:
        if task.id in known:
            continue
        agency = dossier.agency_for(task.step)
        due = dossier.deadline(task.step, agency, now)
        progress.new_tasks.append({"id": task.id, "step": task.step.id,
                                   "role": task.step.role or "", "agency": agency,
                                   "claimed_by": None, "ready_at": now, "due_at": due})
        progress.events.append(_event(now, EventKind.TASK_READY, task.step.id, None, agency,
                                      {"due": due.isoformat()} if due is not None else None))
        if completed is not None:
            progress.events.append(_event(now, EventKind.HANDED_OVER, completed.step, actor,
                                          completed.agency,
                                          {"to_step": task.step.id, "to_agency": agency,
                                           "to_role": task.step.role}))
        set_status(task.step)
    _progress_timers(dossier, instance, progress, now, set(was_timers))
    progress.finished = instance.completed
    if progress.finished:
        progress.events.append(_event(now, EventKind.FINISHED, None, actor, None,
                                      {"status": int(status)}))
    progress.status = status
    return progress


def _progress_timers(dossier: _Context, instance: Instance, progress: _Progress,
                     now: datetime, known: set[str]) -> None:
    """Schedule timers the process started waiting on; move service-level timers when
    the appointment moved or the clock paused; drop timers the process left."""
    sla_changed = (progress.appointment_at != dossier.appointment_at
                   or progress.paused_at != dossier.paused_at)
    waiting = instance.timers() if (known or instance.timer_ids()) else []
    for timer in waiting:
        if timer.id not in known:
            due = dossier.timer_due(timer, now, progress.appointment_at, progress.paused_at)
            instance.schedule(timer.id, due)
            progress.new_timers.append({"id": timer.id, "step": timer.step.id, "due_at": due})
        elif sla_changed and uses_sla(timer.expression):
            due = dossier.timer_due(timer, now, progress.appointment_at, progress.paused_at)
            if due != timer.due:
                instance.schedule(timer.id, due)
                progress.rescheduled.append((timer.id, due))
    progress.gone_timers = sorted(known - {t.id for t in waiting})


def _entries(code: str, rows: Iterable[tuple[Any, ...]]) -> list[Event]:
    """Event-log rows ``(at, kind, step, actor, agency, detail)`` as public events."""
    return [Event(dossier_code=code, at=_local(at), kind=EventKind(kind), step=step,
                  actor=actor, agency=agency, detail=detail or {})
            for at, kind, step, actor, agency, detail in rows]


def _open_task(model: ProcessModel, task_id: str, dossier_code: str, row: Any,
               claimed_by: str | None, due_at: datetime | None) -> Task:
    """A public Task from any open-task row (``step``, ``role``, ``agency``, ``ready_at``)."""
    step = _find_step(model, row.step)
    return Task(id=task_id, dossier_code=dossier_code, step=row.step,
                name=step.name if step else row.step, role=row.role, agency=row.agency,
                ready_at=_local(row.ready_at), claimed_by=claimed_by,
                form=step.form if step else (),
                due_at=_local(due_at) if due_at else None)


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
