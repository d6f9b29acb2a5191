"""The engine: the public facade a portal backend calls.

Each command (receive, claim, release, reassign, complete, message, start_apology, a
timer firing, add_officer) runs in one database transaction through one command path:
either everything it changes is stored — the dossier, its tasks, its timers, its events
— or nothing is, and the engine's in-memory workflow cache never keeps a state the
database did not get. Queries (dossier, history, sla, inbox, task) read committed data
only. Every error that leaves a public method is an
:class:`~onestop.errors.OnestopError` naming the dossier, task, officer or field at fault.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections import OrderedDict
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence
from uuid import UUID

from . import inputs
from .bpmn import (
    Instance,
    ProcessModel,
    StepInfo,
    WaitingTimer,
    evaluate,
    model_dictionary,
    model_from_body,
)
from .allotment import CUTOFF
from .bpmn.extensions import PORTAL_SENDER, message_senders
from .bpmn.runtime import Connector, late_path_after, script_engine
from .bpmn.timers import IsoDuration, literal, read_value, uses_sla
from .catalog import Agency, Procedure
from .clock import VIETNAM_TZ, Clock, SystemClock
from .duration import Duration
from .errors import (
    ConcurrentUpdate,
    DossierNotFound,
    InvalidInput,
    ModelError,
    OnestopError,
    OnestopWarning,
    PermissionDenied,
    ProcessError,
    RuleViolation,
    StoreError,
    TaskNotFound,
    TaskNotOpen,
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
from .rules import late_path
from .regimes import Regime, Regimes
from .rules.deadlines import allotment_span, appointment, resumed_appointment, step_deadline
from .rules.sla import SlaReport, assess
from .store import DossierRow, OpenTaskRow, TaskRow, Unit, open_store

#: The role that receives dossiers at a one-stop desk.
RECEIVING_ROLE = "receiving_officer"
#: The role of an agency's head: may release or reassign any claim on the agency's tasks.
LEADER_ROLE = "leader"
#: Who acts when a dossier arrives without an officer, or a message comes from outside
#: (online or postal intake, the applicant, the payment platform).
PORTAL_ACTOR = "portal"
#: Process variables the engine sets; completion data may not overwrite them.
RESERVED_FIELDS = frozenset({"procedure", "channel", "components", "missing_components",
                             "to_digitize", "reused", "fee_due"})
#: Form fields of the apology path: the responsible agency's reason and proposed date.
DELAY_REASON, NEW_APPOINTMENT = late_path.DELAY_REASON, late_path.NEW_APPOINTMENT

_DOSSIER_CODE = re.compile(r"(?P<desk>[A-Za-z0-9][A-Za-z0-9._-]*)-(?P<day>\d{6})-(?P<seq>\d{4,})")
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_OFFICER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")


class Engine:
    """Runs dossiers through BPMN internal procedures, durably.

    >>> engine = Engine("sqlite:///onestop.db")            # doctest: +SKIP
    >>> dossier = engine.receive("2.000815", applicant={"name": "Nguyễn Văn A"},
    ...                          components=["ban-chinh"], officer="tn.an")  # doctest: +SKIP

    ``database`` is a SQLAlchemy URL or a SQLite file path. Keyword-only:

    * ``library``: a folder of BPMN files with its ``catalog.json`` (default: the library
      shipped with onestop) or an already loaded :class:`~onestop.library.Library`;
    * ``clock``: tells the time (default: the system clock); pass a
      :class:`~onestop.clock.ManualClock` in tests and simulations;
    * ``durability``: ``"full"`` (fsync every commit, default) or ``"normal"``;
    * ``cache_size``: how many running workflows stay decoded in memory (default 512);
    * ``due_soon``: how close to a deadline counts as due soon (default ``"1wd"``);
    * ``connectors``: maps the connector names the models' service tasks call (e.g.
      ``"payment.confirm"``) to functions: each gets a copy of the dossier's process data
      and returns a mapping merged into it (or None);
    * ``lock_timeout``: seconds a command waits for another one's database lock before
      :class:`~onestop.errors.StoreError` (default 30).
    """

    def __init__(self, database: str | os.PathLike[str] = "onestop.db", *,
                 library: str | Path | Library | None = None, clock: Clock | None = None,
                 durability: str = "full", cache_size: int = 512,
                 due_soon: str | Duration = "1wd",
                 connectors: Mapping[str, Connector] | None = None,
                 lock_timeout: float = 30.0) -> None:
        if clock is not None and not callable(getattr(clock, "now", None)):
            raise InvalidInput(f"clock must have a now() method (e.g. "
                               f"onestop.ManualClock), not {type(clock).__name__}")
        self.clock: Clock = clock or SystemClock()
        self._now()                                   # a naive clock is refused now
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise InvalidInput(f"cache_size must be a whole number >= 0, not "
                               f"{inputs.shown(cache_size)}")
        try:
            self.due_soon = due_soon if isinstance(due_soon, Duration) \
                else Duration.parse(due_soon)
        except ValueError as exc:
            raise InvalidInput(f"due_soon: {exc}") from None
        if connectors is not None and (
                not isinstance(connectors, Mapping)
                or not all(isinstance(k, str) and callable(v) for k, v in connectors.items())):
            raise InvalidInput("connectors must map connector names to functions")
        if library is not None and not isinstance(library, (str, os.PathLike, Library)):
            raise InvalidInput(f"library must be a folder or a loaded Library, not "
                               f"{type(library).__name__}")
        self.library = library if isinstance(library, Library) else load_library(library)
        for model in self.library.models.values():
            for name, element in model.connectors().items():
                if name not in (connectors or {}):
                    raise ModelError(f"service task calls connector {name!r}, which is not "
                                     f"registered: pass Engine(connectors={{{name!r}: ...}})",
                                     file=model.file, element=element)
        self._script = script_engine(connectors)
        self._store = open_store(database, durability=durability, lock_timeout=lock_timeout)
        self._models: dict[int, ProcessModel] = {}
        #: Each stored model's state dictionary, as the store keeps it.
        self._dictionaries: dict[int, bytes] = {}
        self._spec_ids: dict[str, int] = {}
        self._instances: OrderedDict[int, tuple[int, Instance]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_size = cache_size
        self._roles = self._roles_in_use()
        now = self._now()
        try:
            with self._store.write() as tx:
                for model in self.library.models.values():
                    spec_id = tx.ensure_spec(model.spec_hash, model.process_id, model.file,
                                             model.body, model_dictionary(model), now)
                    self._models[spec_id] = model
                    self._spec_ids[model.spec_hash] = spec_id
                    stored = tx.spec(spec_id)
                    self._dictionaries[spec_id] = stored.dictionary \
                        if stored is not None and stored.dictionary is not None \
                        else model_dictionary(model)
        except BaseException:
            self._store.close()
            raise

    # -- lifecycle -----------------------------------------------------------------
    def close(self) -> None:
        """Release the database connections."""
        with self._cache_lock:
            self._instances.clear()
        self._store.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the catalogue -------------------------------------------------------------
    def procedures(self, *, desk: str | None = None) -> list[Procedure]:
        """The catalogue's procedures, by code; with ``desk``, those that desk receives
        (boundary-free ones, those listing it in ``desks``, and those listing no desk)."""
        catalog = self.library.catalog
        found = sorted(catalog.procedures.values(), key=lambda p: p.code)
        if desk is None:
            return found
        receiving = catalog.agency(inputs.identifier("desk", desk))
        if receiving.kind not in (None, "desk"):
            return []
        return [p for p in found if p.boundary_free or not p.desks or desk in p.desks]

    def procedure(self, code: str) -> Procedure:
        """One procedure of the catalogue (:class:`~onestop.errors.UnknownProcedure`)."""
        return self.library.catalog.procedure(code)

    def agencies(self, *, kind: str | None = None) -> list[Agency]:
        """The catalogue's agencies, by code; with ``kind``, only desks, resolvers,
        consulted agencies or postal services."""
        return sorted((a for a in self.library.catalog.agencies.values()
                       if kind is None or a.kind == kind), key=lambda a: a.code)

    # -- officers ------------------------------------------------------------------
    def add_officer(self, officer: Officer) -> Officer:
        """Register an officer, or replace the name and roles of an existing one.

        Every agency must be in the catalogue. A role that no loaded model, regime or
        the engine itself uses is accepted with an :class:`~onestop.errors.OnestopWarning`
        (usually a typo: nobody would ever see a task for it)."""
        if not isinstance(officer, Officer):
            raise InvalidInput(f"add_officer takes an Officer, not {type(officer).__name__}")
        if not _OFFICER_ID.fullmatch(officer.id):
            raise InvalidInput(f"officer id {officer.id!r} must be letters, digits, '.', "
                               f"'-', '_' or '@'")
        for agency, roles in officer.roles.items():
            self.library.catalog.agency(agency)
            for role in sorted(roles):
                if role not in self._roles:
                    warnings.warn(OnestopWarning(
                        f"officer {officer.id}: role {role!r} at {agency} is used by no "
                        f"loaded model (roles in use: {', '.join(sorted(self._roles))})"),
                        stacklevel=2)
        with self._store.write() as tx:
            tx.put_officer(officer)
        return officer

    def officer(self, officer_id: str) -> Officer:
        """The registered officer with this id; :class:`UnknownOfficer` otherwise."""
        officer_id = _officer_id(officer_id)
        with self._store.read() as tx:
            return self._officer(tx, officer_id)

    # -- commands ------------------------------------------------------------------
    def receive(self, procedure: str, *, applicant: Mapping[str, Any],
                components: Iterable[str] = (), channel: Channel | int = Channel.IN_PERSON,
                officer: str | None = None, desk: str | None = None,
                resolving_agency: str | None = None, held: Iterable[str] = ()) -> Dossier:
        """Receive a dossier (tiếp nhận hồ sơ) for a procedure and start its process.

        ``components`` are the codes of the components handed in (a list or any
        iterable of codes; one code alone is written ``["code"]``). An in-person dossier
        is received by ``officer``, who must hold the receiving role at ``desk`` (the
        desk defaults to the officer's only desk). Online and postal dossiers may come
        without an officer; then ``desk`` is required. Returns the new dossier, whose
        ``code`` identifies it from now on. Text is stored as Unicode NFC.

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
        except (ValueError, TypeError):
            raise InvalidInput(f"channel {inputs.shown(channel)} must be 1 (in person), "
                               f"2 (online) or 3 (postal)") from None
        if not isinstance(applicant, Mapping):
            raise InvalidInput("applicant must be a mapping of fields, e.g. "
                               "{'name': 'Nguyễn Văn A'}")
        applicant = inputs.data("applicant", applicant)
        handed_in = inputs.codes("components", components)
        held_codes = inputs.codes("held", held)
        for code in handed_in:
            if proc.component(code) is None:
                known = ", ".join(c.code for c in proc.components) or "none"
                raise InvalidInput(f"procedure {proc.code} has no component {code!r} "
                                   f"(its components: {known})")
        for code in held_codes:
            found = proc.component(code)
            if found is None:
                known = ", ".join(c.code for c in proc.components) or "none"
                raise InvalidInput(f"held component {code!r}: procedure {proc.code} has no "
                                   f"such component (its components: {known})")
            if not found.reusable:
                raise InvalidInput(f"held component {code!r} ({found.name}) of procedure "
                                   f"{proc.code} is not marked reusable in the catalogue: "
                                   f"the applicant hands it in")
        if officer is not None:
            officer = inputs.identifier("officer", officer)
        if desk is not None:
            catalog.agency(inputs.identifier("desk", desk))
        reused = [c.code for c in proc.components if c.code in held_codes]
        to_digitize = [] if channel is Channel.ONLINE else [
            c.code for c in proc.components
            if c.must_digitize and c.code in handed_in and c.code not in reused]
        handed_in = list(dict.fromkeys([*handed_in, *held_codes]))
        resolver = proc.agency if resolving_agency is None else \
            inputs.identifier("resolving_agency", resolving_agency)
        catalog.agency(resolver)
        model = self.library.model_for(proc)
        spec_id = self._spec_ids[model.spec_hash]
        now = self._now()
        regime = proc.effective_regime(self._regimes().at(now))
        with self._command() as command:
            tx = command.tx
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
            }, self._script, self._dictionaries[spec_id])
            context = _Context(self, code, desk, resolver, proc.agencies,
                               DossierStatus.NEWLY_REGISTERED, regime.code, proc.code,
                               None, None, now, None, tx, now, model)
            progress = _progress(context, instance, passed, now, actor=actor, completed=None,
                                 was_open=())
            info = {"applicant": applicant, "components": handed_in,
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
            command.keep(dossier_id, 1, instance)
            return self._snapshot(values, [_NewTask(t, code) for t in progress.new_tasks], model)

    def claim(self, task_id: str, officer: str) -> Task:
        """Take a task into one's own hands (nhận xử lý); others no longer see it.

        :class:`PermissionDenied` when someone else holds it or the officer lacks its
        role; :class:`~onestop.errors.TaskNotOpen` when it was completed or cancelled."""
        task_id, officer = _task_id(task_id), _officer_id(officer)
        now = self._now()
        with self._command() as command:
            row = self._authorised_task(command.tx, task_id, officer)
            if row.claimed_by != officer:
                if not command.tx.claim_task(row.task_id, officer):
                    raise PermissionDenied(f"task {task_id} of dossier {row.code} is already "
                                           f"claimed by {row.claimed_by}")
                command.tx.append_events([{**_event(now, EventKind.CLAIMED, row.step, officer,
                                                    row.agency, None), "dossier_id": row.id}])
            model = self._model(command.tx, row.spec_id)
        return self._task_of(model, row, claimed_by=officer)

    def release(self, task_id: str, officer: str) -> Task:
        """Hand a claimed task back to the pool of its role (trả lại).

        The holder may always hand it back (even once their role was withdrawn); a
        leader of the task's agency may release anyone's claim (recorded with the
        holder's id)."""
        task_id, officer = _task_id(task_id), _officer_id(officer)
        now = self._now()
        with self._command() as command:
            tx = command.tx
            row = self._open_task_row(tx, task_id, officer)
            holder = row.claimed_by
            if holder is None:
                raise PermissionDenied(f"task {task_id} of dossier {row.code} is not claimed; "
                                       f"there is nothing to hand back")
            if holder != officer and not self._officer(tx, officer).has_role(row.agency,
                                                                             LEADER_ROLE):
                raise PermissionDenied(f"task {task_id} of dossier {row.code} is claimed by "
                                       f"{holder}; only its holder or a {LEADER_ROLE} of "
                                       f"{row.agency} can release it")
            if not tx.release_task(row.task_id, holder):
                raise ConcurrentUpdate(f"task {task_id} of dossier {row.code} changed hands "
                                       f"meanwhile; retry")
            tx.append_events([{**_event(now, EventKind.RELEASED, row.step, officer, row.agency,
                                        {"holder": holder} if holder != officer else None),
                               "dossier_id": row.id}])
            model = self._model(tx, row.spec_id)
        return self._task_of(model, row, claimed_by=None)

    def reassign(self, task_id: str, officer: str, *, by: str) -> Task:
        """Give an open task to ``officer`` (who must hold its role in its agency), on
        the decision of ``by``, a leader of the task's agency (phân công lại). Recorded
        as a ``reassigned`` event with the previous holder."""
        task_id, officer, by = _task_id(task_id), _officer_id(officer), _officer_id(by)
        now = self._now()
        with self._command() as command:
            tx = command.tx
            row = self._open_task_row(tx, task_id, by)
            if not self._officer(tx, by).has_role(row.agency, LEADER_ROLE):
                raise PermissionDenied(f"officer {by} is not a {LEADER_ROLE} of {row.agency} "
                                       f"and cannot reassign task {task_id} of dossier "
                                       f"{row.code}")
            if not self._officer(tx, officer).has_role(row.agency, row.role):
                raise PermissionDenied(f"officer {officer} does not hold the role "
                                       f"{row.role!r} in agency {row.agency}, which step "
                                       f"{row.step} of dossier {row.code} needs")
            if not tx.assign_task(row.task_id, officer, row.claimed_by):
                raise ConcurrentUpdate(f"task {task_id} of dossier {row.code} changed hands "
                                       f"meanwhile; retry")
            tx.append_events([{**_event(now, EventKind.REASSIGNED, row.step, by, row.agency,
                                        {"from": row.claimed_by, "to": officer}),
                               "dossier_id": row.id}])
            model = self._model(tx, row.spec_id)
        return self._task_of(model, row, claimed_by=officer)

    def complete(self, task_id: str, officer: str,
                 data: Mapping[str, Any] | None = None) -> Dossier:
        """Complete a task with its form data and move the dossier on.

        The officer must hold the task's role in its agency, and the task must not be
        claimed by someone else. ``data`` holds the step's form fields and nothing else
        (:class:`InvalidInput` names a field the step does not have); it must give every
        required field (with a value among its choices, where it has choices). An
        optional field left out is None in the process data unless an earlier step set
        it. Text is stored as Unicode NFC.
        """
        task_id, officer = _task_id(task_id), _officer_id(officer)
        data = inputs.fields("form data", data)
        now = self._now()
        with self._command() as command:
            tx = command.tx
            row = self._authorised_task(tx, task_id, officer)
            if row.claimed_by not in (None, officer):
                raise PermissionDenied(f"task {task_id} of dossier {row.code} is "
                                       f"claimed by {row.claimed_by}")
            model = self._model(tx, row.spec_id)
            step = _find_step(model, row.step)
            instance = command.load(self, row, model)
            known = instance.task_data(row.task_id)
            # A field the engine filled in on the task (a proactive apology's reason)
            # counts as given.
            given = {k for k in instance.prefilled(row.task_id) if known.get(k) not in (None, "")}
            _validate_form(step, data, row.code, given)
            context = self._context(row, tx, now, model)
            late = self._late_step(row, step, {**known, **data}, context, officer) \
                if step is not None and step.sla is not None else None
            was_open = instance.open_task_ids()
            was_timers = instance.timer_ids()
            # An optional field left blank is None in the process data, so conditions can
            # test it, unless the dossier already has it; the log keeps what was given.
            blanks = {f.name: None for f in (step.form if step else ())
                      if f.name not in data and f.name not in known}
            try:
                passed = instance.complete(row.task_id, {**blanks, **data})
            except ProcessError as exc:
                raise ProcessError(exc.reason, dossier=row.code, element=exc.element) from None
            progress = _progress(context, instance, passed, now, actor=officer,
                                 completed=row, was_open=was_open, was_timers=was_timers,
                                 late=late)
            done = _event(now, EventKind.COMPLETED, row.step, officer, row.agency, data or None)
            if not tx.take_task(row.task_id, officer):
                raise TaskNotOpen(f"task {task_id} of dossier {row.code} was completed or "
                                  f"claimed by another command meanwhile")
            values = self._store_progress(command, row, instance, progress, now, done)
            still_open = was_open - {row.task_id} - set(progress.gone)
            # Sequential flows (the usual case): what is open now is what just opened.
            open_rows = tx.open_tasks(row.id) if still_open else \
                [_NewTask(t, row.code) for t in progress.new_tasks]
            return self._snapshot(values, open_rows, model)

    def message(self, code: str, name: str, *, officer: str | None = None,
                portal: bool = False, data: Mapping[str, Any] | None = None) -> Dossier:
        """Deliver the message ``name`` to dossier ``code`` and move the dossier on.

        Messages are what happens to a dossier outside the officers' inboxes: the
        applicant withdraws (rút hồ sơ) or asks where the dossier stands, the payment
        platform confirms a fee, a consulted agency answers. A model catches them with
        message events (boundary, intermediate catch, event-based gateway) and receive
        tasks, in the process or in its sub-processes and called processes; ``name`` is
        the ``name`` of the ``bpmn:message`` the event refers to.

        Who sends it, said explicitly: ``portal=True`` for the portal channel (the
        applicant, the payment platform) or ``officer=`` for an officer. The catching
        event names who may deliver it (its role list: role names, and ``portal``; an
        event that names nobody takes the portal's messages only); an officer must hold
        one of those roles in one of the dossier's agencies (:class:`PermissionDenied`
        otherwise, and nothing is stored).

        ``data`` (field names like form fields) becomes process variables from the
        catching event on, so conditions after it read them. It cannot set the engine's
        own variables (``procedure``, ...) nor a field an officer's form decides
        (``outcome``, ``verdict``, ...), unless the catching event's form lists it. Each
        event waiting for the message catches it; an interrupting boundary event cancels
        its activity's open tasks (``task_cancelled``), a non-interrupting one keeps
        waiting for the next message while its activity runs. A dossier that is not
        waiting for the message (finished, or no such event reached) is refused with
        :class:`RuleViolation` naming the messages it does wait for, and nothing is
        stored.
        """
        return self._deliver(code, name, officer=officer, portal=portal, data=data)

    def start_apology(self, code: str, officer: str, *, reason: str | None = None) -> Dossier:
        """Start the late path of a dossier in resolution now (proactive apology), without
        waiting for the engine's warning: an officer of the resolving side (who holds a
        role at the resolving agency or another agency of the procedure other than the
        desk) who knows the dossier will be late — a field inspection, a consulted
        agency's delay — has the responsible agency asked for its explanation at once.
        ``reason``, when given, is filled in as the prompt's ``delay_reason``.

        The engine fires the late path's waiting timer ahead of time (the warning, or
        after a ``no``, the prompt at the due instant). Refused with
        :class:`RuleViolation` when the dossier has no late path waiting (not in
        resolution, or its prompt is already open) or the regime's re-appointments are
        used up; :class:`PermissionDenied` for an officer of the desk or of no agency of
        the dossier. Nothing is stored then."""
        code, officer = _dossier_code(code), _officer_id(officer)
        given = inputs.text("reason", reason, max_length=2000) if reason is not None else None
        with self._store.read() as reader:
            dossier_id = self._dossier_row(reader, code).id
        now = self._now()
        with self._command() as command:
            tx = command.tx
            clerk = self._officer(tx, officer)
            row = tx.dossier_by_id(dossier_id)
            if row is None:
                raise DossierNotFound(f"no dossier with code {code}")
            model = self._model(tx, row.spec_id)
            context = self._context(row, tx, now, model)
            side = sorted((context.agencies() - {row.desk_agency}) & set(clerk.roles))
            if not side:
                raise PermissionDenied(
                    f"officer {officer} cannot start the apology of dossier {code}: that is "
                    f"for an officer of the resolving side "
                    f"({', '.join(sorted(context.agencies() - {row.desk_agency}))})")
            if row.finished_at is not None:
                raise RuleViolation(f"dossier {code} has finished; there is nothing to "
                                    f"apologise for any more")
            instance = command.load(self, row, model)
            open_late = [t.step.id for t in instance.open_tasks() if t.step.sla]
            if open_late:
                raise RuleViolation(f"dossier {code}: the late path is already open "
                                    f"({', '.join(open_late)})")
            state = context.late_state(instance)
            if state.apologies >= context.regime.max_reappointments:
                raise RuleViolation(f"dossier {code}: regime {context.regime.code} allows "
                                    f"{context.regime.max_reappointments} re-appointment(s) "
                                    f"and the dossier has had {state.apologies}")
            waiting = [t for t in instance.timers()
                       if late_path_after(model, t.step.id)[0] is not None]
            if not waiting:
                raise RuleViolation(f"dossier {code} is not in resolution, or its model has "
                                    f"no late path (a timer leading to a step marked "
                                    f"onestop:sla=\"propose\")")
            timer = waiting[0]
            was_open = instance.open_task_ids()
            was_timers = instance.timer_ids()      # the fired one's row goes with the rest
            try:
                passed = instance.fire(timer.id)
            except ProcessError as exc:
                raise ProcessError(exc.reason, dossier=code, element=exc.element) from None
            if given is not None:
                for task in instance.open_tasks():
                    if task.step.sla == late_path.PROPOSE and task.id not in was_open \
                            and any(f.name == DELAY_REASON for f in task.step.form):
                        instance.update_task_data(task.id, {DELAY_REASON: given})
            progress = _progress(context, instance, passed, now, actor=officer,
                                 completed=None, was_open=was_open, was_timers=was_timers)
            started = _event(now, EventKind.APOLOGY_REQUESTED, timer.step.id, officer, side[0],
                             {"reason": given, "timer_due": _local(timer.due).isoformat()
                              if timer.due else None})
            values = self._store_progress(command, row, instance, progress, now, started)
            return self._snapshot(values, tx.open_tasks(row.id), model)

    def _deliver(self, code: str, name: str, *, officer: str | None, portal: bool,
                 data: Mapping[str, Any] | None) -> Dossier:
        code = _dossier_code(code)
        name = inputs.identifier("message name", name) if isinstance(name, str) else name
        if not isinstance(name, str) or not name.strip():
            raise InvalidInput(f"message name {inputs.shown(name)} must be non-empty text")
        if not isinstance(portal, bool):
            raise InvalidInput(f"portal must be True or False, not {inputs.shown(portal)}")
        if portal == (officer is not None):
            raise InvalidInput(f"dossier {code}: message {name!r}: say who delivers it: "
                               f"officer='ID' for an officer, or portal=True for the portal "
                               f"channel (the applicant, the payment platform)")
        if officer is not None:
            officer = _officer_id(officer)
        payload = inputs.fields(f"dossier {code}: message {name!r} data", data)
        for key in payload:
            if not _FIELD_NAME.fullmatch(key):
                raise InvalidInput(f"dossier {code}: message {name!r}: field name {key!r} "
                                   f"must start with a letter and use letters, digits and "
                                   f"'_'")
            if key in RESERVED_FIELDS:
                raise InvalidInput(f"dossier {code}: message {name!r}: field {key!r} is set "
                                   f"by the engine and cannot be changed by a message")
        with self._store.read() as reader:
            dossier_id = self._dossier_row(reader, code).id
        now = self._now()
        with self._command() as command:
            tx = command.tx
            clerk = self._officer(tx, officer) if officer is not None else None
            row = tx.dossier_by_id(dossier_id)
            if row is None:
                raise DossierNotFound(f"no dossier with code {code}")
            model = self._model(tx, row.spec_id)
            instance = None if row.finished_at is not None else command.load(self, row, model)
            waiting = instance.waiting_messages() if instance is not None else []
            if instance is None or name not in waiting:
                state = "has finished" if instance is None else "is in progress"
                raise RuleViolation(
                    f"dossier {row.code} {state} and is not waiting for message "
                    f"{name!r}; it waits for "
                    + (", ".join(repr(w) for w in waiting) if waiting else "no message"))
            catching = instance.message_steps(name)
            context = self._context(row, tx, now, model)
            self._check_sender(row.code, name, catching, clerk, context)
            # What officers decide on their forms (outcome, verdict, return_mode, ...) is
            # theirs: a message may carry such a field only if its own event lists it.
            declared = {f.name for s in catching for f in s.form}
            decided = {f.name for s in model.user_steps() for f in s.form}
            for key in payload:
                if key in decided and key not in declared:
                    raise InvalidInput(f"dossier {row.code}: message {name!r}: field {key!r} "
                                       f"is decided on an officer's form; a message cannot "
                                       f"set it unless its catching event's form lists it")
            was_open = instance.open_task_ids()
            was_timers = instance.timer_ids()
            try:
                passed = instance.deliver(name, payload)
            except ProcessError as exc:
                raise ProcessError(exc.reason, dossier=row.code, element=exc.element) from None
            actor = clerk.id if clerk is not None else PORTAL_ACTOR
            progress = _progress(context, instance, passed, now, actor=actor,
                                 completed=None, was_open=was_open, was_timers=was_timers)
            step = catching[0] if catching else None
            received = _event(now, EventKind.MESSAGE_RECEIVED,
                              step.id if step is not None else None, actor,
                              context.agency_for(step) if step is not None else None,
                              {"message": name, "data": payload})
            values = self._store_progress(command, row, instance, progress, now, received)
            return self._snapshot(values, tx.open_tasks(row.id), model)

    def _check_sender(self, code: str, name: str, catching: Sequence[StepInfo],
                      clerk: Officer | None, context: "_Context") -> None:
        senders = frozenset().union(*(message_senders(s) for s in catching)) \
            if catching else frozenset({PORTAL_SENDER})
        if clerk is None:
            if PORTAL_SENDER not in senders:
                raise PermissionDenied(f"dossier {code}: message {name!r} is delivered by an "
                                       f"officer ({', '.join(sorted(senders))}), not through "
                                       f"the portal")
            return
        roles = senders - {PORTAL_SENDER}
        agencies = context.agencies()
        if not any(clerk.has_role(agency, role) for agency in agencies for role in roles):
            who = f"an officer with the role {' or '.join(sorted(roles))}" if roles \
                else "the portal only"
            raise PermissionDenied(f"officer {clerk.id} may not deliver message {name!r} to "
                                   f"dossier {code}: it is for {who}"
                                   + (f" in {', '.join(sorted(agencies))}" if roles else ""))

    def fire_due_timers(self, *, limit: int | None = None) -> list[FiredTimer]:
        """Fire every timer due by the clock's now, oldest first, each in its own
        transaction, and move its dossier on; ``limit`` caps how many are fired.

        The due timers are found through an index, so a sweep costs time in proportion
        to the timers that are due, not to the dossiers in progress. A timer fires
        exactly once, and only if it is still due when its dossier is locked: a sweep
        running at the same time skips the ones already fired, and a timer that a
        command suspended (a supplement request pauses the clock) or moved meanwhile is
        left alone. A timer whose dossier cannot move on (a failing model expression)
        is reported with ``error`` and stays due; the other timers still fire.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise InvalidInput(f"limit must be a whole number >= 0 or None, not "
                               f"{inputs.shown(limit)}")
        now = self._now()
        fired: list[FiredTimer] = []
        after: tuple[datetime, str] | None = None
        while limit is None or len(fired) < limit:
            batch = _TIMER_BATCH if limit is None else min(_TIMER_BATCH, limit - len(fired))
            with self._store.read() as reader:
                due = [(r.id, r.dossier_id, r.step, r.due_at)
                       for r in reader.due_timers(now, after, batch)]
            for timer_id, dossier_id, step, due_at in due:
                try:
                    done = self._fire(timer_id, dossier_id, step, now)
                except _TimerFailed as failed:
                    fired.append(FiredTimer(failed.code, step, _local(due_at), _local(now),
                                            str(failed.error)))
                    continue
                if done is not None:
                    fired.append(FiredTimer(done[0], step, _local(done[1]), _local(now)))
            if len(due) < batch:
                break
            after = (due[-1][3], due[-1][0])
        return fired

    def next_timer_due(self) -> datetime | None:
        """When the earliest scheduled timer falls due (None: none is scheduled; a timer
        suspended while its clock is paused is not scheduled). A simulation or a demo
        sets its clock to this instant and calls :meth:`fire_due_timers`, instead of
        polling."""
        with self._store.read() as reader:
            due = reader.next_timer_due()
        return _local(due) if due is not None else None

    def _fire(self, timer_id: str, dossier_id: int, step: str,
              now: datetime) -> tuple[str, datetime] | None:
        code = ""
        try:
            with self._command() as command:
                tx = command.tx
                row = tx.dossier_by_id(dossier_id)      # locks the dossier
                due_at = tx.take_timer(timer_id, now) if row is not None else None
                if row is None or due_at is None:
                    return None  # fired by another sweep, or suspended or moved meanwhile
                code = row.code
                model = self._model(tx, row.spec_id)
                instance = command.load(self, row, model)
                was_open = instance.open_task_ids()
                was_timers = instance.timer_ids() - {timer_id}
                try:
                    passed = instance.fire(timer_id)
                except ProcessError as exc:
                    raise ProcessError(exc.reason, dossier=row.code,
                                       element=exc.element or step) from None
                context = self._context(row, tx, now, model)
                progress = _progress(context, instance, passed, now, actor=None,
                                     completed=None, was_open=was_open, was_timers=was_timers)
                fired = _event(now, EventKind.TIMER_FIRED, step, None, None,
                               {"due": _local(due_at).isoformat()})
                self._store_progress(command, row, instance, progress, now, fired)
                return row.code, due_at
        except OnestopError as exc:
            raise _TimerFailed(code, exc) from exc
        except Exception as exc:  # noqa: BLE001 - one dossier must not stop the sweep
            raise _TimerFailed(code, ProcessError(f"{type(exc).__name__}: {exc}",
                                                  dossier=code or None, element=step)) from exc

    # -- the command path ------------------------------------------------------------
    @contextmanager
    def _command(self) -> Iterator["_Command"]:
        """One command, one transaction. Workflows a command loads are changed in place;
        if it fails anywhere — including the commit — they are dropped from the cache,
        and what it keeps enters the cache only once the commit succeeded."""
        command: _Command | None = None
        try:
            with self._store.command() as tx:
                command = _Command(tx)
                yield command
        except BaseException:
            if command is not None:
                with self._cache_lock:
                    for dossier_id in command.touched | {k[0] for k in command.kept}:
                        self._instances.pop(dossier_id, None)
            raise
        for dossier_id, version, instance in command.kept:
            self._remember(dossier_id, version, instance)

    def _context(self, row: TaskRow | DossierRow, tx: Unit, now: datetime,
                 model: ProcessModel) -> "_Context":
        return _Context(self, row.code, row.desk_agency, row.resolving_agency,
                        row.info.get("agencies", {}), DossierStatus(row.status), row.regime,
                        row.procedure, _local_or_none(row.appointment_at),
                        _local_or_none(row.paused_at), _local(row.received_at), row.id, tx,
                        now, model)

    def _store_progress(self, command: "_Command", row: TaskRow | DossierRow,
                        instance: Instance, progress: "_Progress", now: datetime,
                        first: dict[str, Any]) -> dict[str, Any]:
        """Write what a command changed; returns the dossier's new columns."""
        tx = command.tx
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
        command.keep(row.id, version, instance)
        return dict(row.dossier(), status=int(progress.status), state=state,
                    finished_at=finished_at, appointment_at=progress.appointment_at,
                    paused_at=progress.paused_at)

    def _late_step(self, row: TaskRow, step: StepInfo, values: Mapping[str, Any],
                   context: "_Context", officer: str) -> "_Late":
        """Check a late-path step's answer before it completes: the prompt's
        (``propose``: will the dossier be late, why, until when) or the letter's
        (``apology``: the new appointment it sets).

        Lateness is judged on the service-level clock: while a supplement pauses it, the
        dossier is where it stood when it stopped."""
        history = context.events()
        apologies = sum(1 for e in history if e[1] == EventKind.APPOINTMENT_SET.value
                        and (e[5] or {}).get("reason") == "apology")
        now, appointment_at = context.now, context.appointment_at
        clock_at = context.paused_at or now
        calendar = context.calendar()
        if step.sla == late_path.PROPOSE:
            asks = any(f.name == late_path.WILL_BE_LATE for f in step.form)
            answer = late_path.answer(values, asks=asks, now=now, clock_at=clock_at,
                                      appointment_at=appointment_at, regime=context.regime,
                                      apologies=apologies, calendar=calendar,
                                      dossier=row.code, step=step.id)
            overdue = appointment_at is not None and clock_at > appointment_at
            detail = answer.detail(overdue)
            if answer.will_be_late and appointment_at is not None:
                detail["appointment"] = appointment_at.isoformat()
            return _Late(events=[_event(now, EventKind.DELAY_ASSESSED, step.id, officer,
                                        row.agency, detail)])
        responsible = next((e[4] for e in reversed(history)
                            if e[1] == EventKind.COMPLETED.value and e[2] is not None
                            and getattr(_find_step(context.model, e[2]), "sla", None)
                            == late_path.PROPOSE), None) or context.responsible()
        proposed = next(((e[5] or {}) for e in reversed(history)
                         if e[1] == EventKind.DELAY_ASSESSED.value
                         and (e[5] or {}).get("will_be_late")), {})
        values = late_path.moved_with_the_appointment(values, proposed, appointment_at,
                                                      calendar)
        latest = context.latest(appointment_at) if appointment_at is not None else None
        new, detail = late_path.letter(values, now=now, clock_at=clock_at,
                                       appointment_at=appointment_at, latest=latest,
                                       regime=context.regime, apologies=apologies,
                                       calendar=calendar, responsible=responsible,
                                       dossier=row.code, step=step.id)
        return _Late(reappointment=(new, detail))

    # -- queries -------------------------------------------------------------------
    def dossier(self, code: str) -> Dossier:
        """A snapshot of a dossier: status, open steps and who holds them."""
        code = _dossier_code(code)
        with self._store.read() as tx:
            row = self._dossier_row(tx, code)
            return self._snapshot(row.dossier(), tx.open_tasks(row.id),
                                  self._model(tx, row.spec_id))

    def history(self, code: str) -> list[Event]:
        """Every event of a dossier, oldest first."""
        code = _dossier_code(code)
        with self._store.read() as tx:
            return self._history(tx, self._dossier_row(tx, code))

    def sla(self, code: str, *, due_soon: str | Duration | None = None) -> SlaReport:
        """Where a dossier and each of its steps stand against their deadlines: finished
        early / on time / late, or in progress within time / due soon / overdue; and its
        apology letter (none needed, issued in time, issued late, missing).

        Read from the event log, so the API, the forms and the reports agree.
        ``due_soon`` (default: the engine's, 1 working day) is how close to its deadline
        something must be to count as due soon."""
        code = _dossier_code(code)
        try:
            threshold = self.due_soon if due_soon is None else \
                (due_soon if isinstance(due_soon, Duration) else Duration.parse(due_soon))
        except ValueError as exc:
            raise InvalidInput(f"due_soon: {exc}") from None
        with self._store.read() as tx:
            row = self._dossier_row(tx, code)
            events = self._history(tx, row)
        return self._assess(row.code, row.desk_agency, events, self._now(), threshold)

    @staticmethod
    def _history(tx: Unit, row: DossierRow) -> list[Event]:
        return _entries(row.code, ((e.at, e.kind, e.step, e.actor, e.agency, e.detail)
                                   for e in tx.events(row.id)))

    def _assess(self, code: str, desk: str, events: Sequence[Event], now: datetime,
                due_soon: Duration | None = None) -> SlaReport:
        return assess(code, events, _local(now), self.library.calendars, desk,
                      due_soon or self.due_soon)

    def inbox(self, officer: str) -> list[Task]:
        """Open tasks the officer may act on: unclaimed ones of their roles in their
        agencies, and the ones they have claimed. Oldest first."""
        officer = _officer_id(officer)
        with self._store.read() as tx:
            clerk = self._officer(tx, officer)
            pairs = [(agency, role) for agency, roles in clerk.roles.items() for role in roles]
            return [self._task(tx, r) for r in tx.inbox(clerk.id, pairs)]

    def task(self, task_id: str) -> Task:
        """One open task by id."""
        task_id = _task_id(task_id)
        with self._store.read() as tx:
            row = tx.task(task_id)
            if row is None:
                raise TaskNotOpen(f"no open task with id {task_id!r} (completed and "
                                  f"cancelled tasks are in the dossier's history)")
            return self._task(tx, row)

    # -- internals -----------------------------------------------------------------
    def _now(self) -> datetime:
        """The clock's now, checked: a clock that gives anything but an aware instant
        is refused, whatever the command."""
        try:
            now = self.clock.now()
        except OnestopError:
            raise
        except Exception as exc:  # noqa: BLE001 - the caller's clock failed
            raise InvalidInput(f"the engine's clock failed: {type(exc).__name__}: {exc}") \
                from None
        if not isinstance(now, datetime) or now.tzinfo is None \
                or now.tzinfo.utcoffset(now) is None:
            raise InvalidInput(f"the engine's clock gave {inputs.shown(now)}: it must give a "
                               f"timezone-aware datetime (e.g. datetime.now(onestop.VIETNAM_TZ))")
        return now

    def _officer(self, tx: Unit, officer_id: str | None) -> Officer:
        found = tx.officer(officer_id) if isinstance(officer_id, str) else None
        if found is None:
            raise UnknownOfficer(f"no officer with id {inputs.shown(officer_id)} is registered")
        return found

    def _dossier_row(self, tx: Unit, code: str) -> DossierRow:
        row = tx.dossier(code)
        if row is None:
            raise DossierNotFound(f"no dossier with code {code}")
        return row

    def _open_task_row(self, tx: Unit, task_id: str, officer_id: str) -> TaskRow:
        row = tx.task_for(task_id, officer_id)
        if row is None or row.officer_id is None:
            self._officer(tx, officer_id)          # raises UnknownOfficer when it is that
            raise TaskNotOpen(f"task {task_id!r} is not open: it was completed or cancelled "
                              f"(see the dossier's history), or never existed")
        return row

    def _authorised_task(self, tx: Unit, task_id: str, officer_id: str) -> TaskRow:
        row = self._open_task_row(tx, task_id, officer_id)
        if row.held_role is None:
            raise PermissionDenied(f"officer {officer_id} does not hold the role {row.role!r} "
                                   f"in agency {row.agency}, which step {row.step} of dossier "
                                   f"{row.code} needs")
        return row

    def _model(self, tx: Unit, spec_id: int) -> ProcessModel:
        model = self._models.get(spec_id)
        if model is None:
            found = tx.spec(spec_id)
            if found is None:
                raise ModelError(f"model {spec_id} is missing from the store")
            model = model_from_body(found.body)
            self._dictionaries[spec_id] = found.dictionary if found.dictionary is not None \
                else model_dictionary(model)
            self._models[spec_id] = model
            self._spec_ids[model.spec_hash] = spec_id
        return model

    def _instance(self, row: TaskRow | DossierRow, model: ProcessModel) -> Instance:
        # Taken out of the cache for the command: another thread on this engine can never
        # get a workflow a command is changing; the command puts it back once committed.
        with self._cache_lock:
            cached = self._instances.pop(row.id, None)
        if cached is not None and cached[0] == row.version:
            return cached[1]
        if row.state is None:
            raise StoreError(f"dossier {row.code} has no stored workflow state")
        return Instance.restore(model, row.state, self._script,
                                self._dictionaries.get(row.spec_id))

    def _regimes(self) -> Regimes:
        if self.library.regimes is None:
            raise ModelError("the process library has no legal regimes (regimes.json)")
        return self.library.regimes

    def _roles_in_use(self) -> frozenset[str]:
        roles = {RECEIVING_ROLE, LEADER_ROLE}
        for model in self.library.models.values():
            for per in model.steps.values():
                for step in per.values():
                    roles.update(r for r in (step.role or "").split(",") if r)
        if self.library.regimes is not None:
            for regime in self.library.regimes.all:
                roles.add(regime.apology_role)
        for proc in self.library.catalog.procedures.values():
            for overrides in proc.regime_overrides.values():
                if "apology_role" in overrides:
                    roles.add(overrides["apology_role"])
        roles.discard(PORTAL_SENDER)
        return frozenset(roles)

    def _remember(self, dossier_id: int, version: int, instance: Instance) -> None:
        with self._cache_lock:
            self._instances[dossier_id] = (version, instance)
            self._instances.move_to_end(dossier_id)
            while len(self._instances) > self._cache_size:
                self._instances.popitem(last=False)

    def _task(self, tx: Unit, row: OpenTaskRow) -> Task:
        return _open_task(self._model(tx, row.spec_id), row.id, row.dossier_code, row,
                          row.claimed_by, row.due_at)

    @staticmethod
    def _task_of(model: ProcessModel, row: TaskRow, *, claimed_by: str | None) -> Task:
        return _open_task(model, row.task_id, row.code, row, claimed_by, row.task_due_at)

    def _snapshot(self, row: Mapping[str, Any], open_rows: Sequence[Any],
                  model: ProcessModel) -> Dossier:
        proc = self.library.catalog.procedures.get(row["procedure"])
        info = row["info"]
        components = tuple(info.get("components", []))
        missing = tuple(c.code for c in proc.components
                        if c.required and c.code not in components) if proc else ()
        open_tasks = [_open_task(model, task.id, row["code"], task, task.claimed_by,
                                 task.due_at) for task in open_rows]
        return Dossier(
            code=row["code"], procedure=row["procedure"],
            procedure_name=proc.name if proc else row["procedure"],
            status=DossierStatus(row["status"]), channel=Channel(row["channel"]),
            desk_agency=row["desk_agency"], resolving_agency=row["resolving_agency"],
            received_at=_local(row["received_at"]), received_by=row["received_by"],
            applicant=info.get("applicant", {}), components=components,
            process=model.process_id, spec_hash=model.spec_hash,
            finished_at=_local(row["finished_at"]) if row["finished_at"] else None,
            open_tasks=tuple(open_tasks), regime=row["regime"],
            appointment_at=_local(row["appointment_at"]) if row["appointment_at"] else None,
            missing_components=missing,
        )


#: Due timers read per query in a sweep.
_TIMER_BATCH = 500


class _TimerFailed(Exception):
    """A timer whose dossier could not move on (the sweep reports it and goes on)."""

    def __init__(self, code: str, error: OnestopError) -> None:
        super().__init__(str(error))
        self.code, self.error = code, error


class _Command:
    """What one command touches: its transaction, the dossiers whose workflows it
    loaded (dropped from the cache if it fails), and the workflows to cache once it
    has committed."""

    def __init__(self, tx: Unit) -> None:
        self.tx = tx
        self.touched: set[int] = set()
        self.kept: list[tuple[int, int, Instance]] = []

    def load(self, engine: Engine, row: TaskRow | DossierRow,
             model: ProcessModel) -> Instance:
        self.touched.add(row.id)
        return engine._instance(row, model)

    def keep(self, dossier_id: int, version: int, instance: Instance) -> None:
        self.kept.append((dossier_id, version, instance))


class _Late:
    """What a late-path step's answer adds: events, and the letter's re-appointment."""

    def __init__(self, events: Sequence[dict[str, Any]] = (),
                 reappointment: tuple[datetime, dict[str, Any]] | None = None) -> None:
        self.events = list(events)
        self.reappointment = reappointment


class _Context:
    """What progress bookkeeping needs to know of a dossier, and the engine's rules for it
    (appointment, deadlines, timers, who is responsible for a delay)."""

    def __init__(self, engine: "Engine", code: str, desk: str, resolver: str,
                 slots: Mapping[str, str], status: DossierStatus, regime: str, procedure: str,
                 appointment_at: datetime | None, paused_at: datetime | None,
                 received_at: datetime, dossier_id: int | None, tx: Unit, now: datetime,
                 model: ProcessModel) -> None:
        self.engine, self.code, self.desk, self.resolver = engine, code, desk, resolver
        self.slots, self.status = dict(slots), status
        self.regime_code, self.procedure = regime, procedure
        self.appointment_at, self.paused_at = appointment_at, paused_at
        self.received_at = received_at
        self.dossier_id, self.tx, self.now, self.model = dossier_id, tx, now, model
        self._responsible: str | None = None
        self._events: list[tuple[Any, ...]] | None = None
        self._regime: Regime | None = None

    @property
    def regime(self) -> Regime:
        if self._regime is None:
            regime = self.engine._regimes().get(self.regime_code)
            proc = self.engine.library.catalog.procedures.get(self.procedure)
            self._regime = proc.effective_regime(regime) if proc is not None else regime
        return self._regime

    @property
    def legal_time(self) -> Duration | None:
        proc = self.engine.library.catalog.procedures.get(self.procedure)
        return proc.legal_time if proc is not None else None

    def calendar(self, agency: str | None = None) -> Any:
        return self.engine.library.calendars.for_agency(agency or self.desk)

    def agencies(self) -> set[str]:
        """The dossier's agencies: its desk, its resolver and the procedure's slots."""
        return {self.desk, self.resolver, *self.slots.values()}

    def events(self) -> list[tuple[Any, ...]]:
        """The dossier's stored events ``(at, kind, step, actor, agency, detail)``."""
        if self._events is None:
            self._events = [(e.at, e.kind, e.step, e.actor, e.agency, e.detail)
                            for e in self.tx.events(self.dossier_id)] \
                if self.dossier_id is not None else []
        return self._events

    def agency_for(self, step: StepInfo) -> str:
        slot = step.agency or "resolver"
        if slot == "desk":
            return self.desk
        if slot == "resolver":
            return self.resolver
        if slot == "responsible":
            return self.responsible()
        return self.slots.get(slot, slot)

    def role_for(self, step: StepInfo) -> str:
        """The role a task of ``step`` waits for: the regime's apology role for the late
        path's explanation (the head of the responsible agency), else the step's."""
        if step.sla == late_path.PROPOSE:
            return self.regime.apology_role
        return step.role or ""

    def responsible(self) -> str:
        """The agency that owes the apology: whose steps ran furthest past their
        deadlines, else the resolving agency."""
        if self._responsible is None:
            found = None
            if self.dossier_id is not None:
                events = _entries(self.code, self.events())
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

    def latest(self, appointment_at: datetime) -> datetime:
        """The latest lawful instant for the apology letter."""
        return late_path.latest_letter(self.calendar(), self.regime, self.legal_time,
                                       appointment_at, _local(self.received_at))

    def span(self, step: StepInfo | None) -> int:
        """The working time a step's allotment gives it, in the desk's calendar."""
        if step is None:
            return 0
        return allotment_span(self.calendar(), step.allotment, self.legal_time)

    @staticmethod
    def late_state(instance: Instance) -> late_path.LatePathState:
        """The late path's state, from the steps of it the process has reached."""
        return late_path.late_path_state_of(instance.late_steps())

    def deadline(self, step: StepInfo, agency: str, ready: datetime,
                 appointment_at: datetime | None) -> datetime | None:
        if not step.allotment:
            return None
        if step.sla is not None and appointment_at is not None:
            # The late path: its steps end by the latest lawful instant for the letter.
            rest = self.span(late_path_after(self.model, step.id)[1]) \
                if step.sla == late_path.PROPOSE else 0
            return late_path.late_step_deadline(self.calendar(), ready, self.span(step),
                                                rest, self.latest(appointment_at))
        # A transfer under the cut-off rule: the dossier's cut-off, with the procedure's
        # override (the effective regime).
        cutoff = self.regime.transfer_cutoff if step.allotment == CUTOFF else None
        return step_deadline(self.calendar(agency), ready, step.allotment, self.legal_time,
                             cutoff)

    def timer_due(self, timer: WaitingTimer, now: datetime, appointment_at: datetime | None,
                  paused_at: datetime | None,
                  late_state: Callable[[], late_path.LatePathState]) -> datetime | None:
        """When a timer falls due: None while it depends on a paused service-level clock
        (or on an appointment not set yet), or on a late-path step not owed now. A due
        instant that cannot be (past the calendar, out of the range of dates) is a
        ProcessError naming the timer."""
        try:
            return self._timer_due(timer, now, appointment_at, paused_at, late_state)
        except (OverflowError, ArithmeticError, InvalidInput) as exc:
            raise ProcessError(f"timer: the due instant cannot be computed: {exc}",
                               dossier=self.code, element=timer.step.id) from None

    def _timer_due(self, timer: WaitingTimer, now: datetime, appointment_at: datetime | None,
                   paused_at: datetime | None,
                   late_state: Callable[[], late_path.LatePathState]) -> datetime | None:
        try:
            value = literal(timer.expression)
        except ValueError as exc:
            raise ProcessError(f"timer: {exc}", dossier=self.code, element=timer.step.id) \
                from None
        if value is None:
            scope = dict(timer.data)
            if uses_sla(timer.expression):
                live = _local(appointment_at) if appointment_at is not None else None
                calendar = self.calendar()

                def warning() -> datetime:
                    propose, letter = late_path_after(self.model, timer.step.id)
                    assert live is not None
                    return late_path.warning_at(calendar, self.latest(live),
                                                self.span(propose) + self.span(letter), now)

                scope.update(late_path.timer_instants(
                    late_state(), self.regime, live, paused_at is not None,
                    latest=lambda: self.latest(live) if live else now, warning=warning))
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
        #: A step of the late path opened, closed or was withdrawn.
        self.late_touched = False


def _progress(dossier: _Context, instance: Instance, passed: Iterable[StepInfo], now: datetime,
              *, actor: str | None, completed: Any, was_open: Iterable[str],
              was_timers: Iterable[str] = (), late: _Late | None = None) -> _Progress:
    """What a start, a completion, a message or a timer changed: new tasks and timers,
    statuses, handovers, the service-level clock, the late path, the end."""
    progress = _Progress()
    progress.appointment_at = dossier.appointment_at
    progress.paused_at = dossier.paused_at
    status = dossier.status
    if late is not None:
        progress.late_touched = True
        progress.events.extend(late.events)
        if late.reappointment is not None:
            progress.appointment_at, detail = late.reappointment
            progress.events.append(_event(now, EventKind.APPOINTMENT_SET, completed.step,
                                          actor, completed.agency, detail))

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
        left = instance.step_of(gone)
        if left is not None and left.sla:
            progress.late_touched = True
        progress.events.append(_event(
            now, EventKind.TASK_CANCELLED, left.id if left else None, actor,
            dossier.agency_for(left) if left else None,
            {"reason": "resolution_ended"} if gone in instance.withdrawn else None))
    for task in open_now:
        if task.id in known:
            continue
        if task.step.sla:
            progress.late_touched = True
        agency = dossier.agency_for(task.step)
        due = dossier.deadline(task.step, agency, now, progress.appointment_at)
        progress.new_tasks.append({"id": task.id, "step": task.step.id,
                                   "role": dossier.role_for(task.step), "agency": agency,
                                   "claimed_by": None, "ready_at": now, "due_at": due})
        progress.events.append(_event(now, EventKind.TASK_READY, task.step.id, None, agency,
                                      {"due": due.isoformat()} if due is not None else None))
        if completed is not None:
            progress.events.append(_event(now, EventKind.HANDED_OVER, completed.step, actor,
                                          completed.agency,
                                          {"to_step": task.step.id, "to_agency": agency,
                                           "to_role": dossier.role_for(task.step)}))
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
    the appointment moved, the clock paused or the late path changed; drop timers the
    process left."""
    sla_changed = (progress.appointment_at != dossier.appointment_at
                   or progress.paused_at != dossier.paused_at or progress.late_touched)
    waiting = instance.timers() if (known or instance.timer_ids()) else []
    state: list[late_path.LatePathState] = []

    def late_state() -> late_path.LatePathState:
        if not state:
            state.append(dossier.late_state(instance))
        return state[0]

    for timer in waiting:
        if timer.id not in known:
            due = dossier.timer_due(timer, now, progress.appointment_at, progress.paused_at,
                                    late_state)
            instance.schedule(timer.id, due)
            progress.new_timers.append({"id": timer.id, "step": timer.step.id, "due_at": due})
        elif sla_changed and uses_sla(timer.expression):
            due = dossier.timer_due(timer, now, progress.appointment_at, progress.paused_at,
                                    late_state)
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
            "detail": dict(detail) if detail else None, "version": 2}


def _local(instant: datetime) -> datetime:
    return instant.astimezone(VIETNAM_TZ)


def _local_or_none(instant: datetime | None) -> datetime | None:
    return instant.astimezone(VIETNAM_TZ) if instant is not None else None


def _task_id(value: Any) -> str:
    """A task id as the engine issues them (a UUID); TaskNotFound for anything else."""
    if isinstance(value, str) and len(value) <= 40:
        try:
            return str(UUID(value))
        except ValueError:
            pass
    raise TaskNotFound(f"{inputs.shown(value)} is not a task id (task ids are UUIDs, as "
                       f"inbox() and dossier().open_tasks give them)")


def _officer_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > inputs.MAX_ID \
            or not _OFFICER_ID.fullmatch(value):
        raise UnknownOfficer(f"{inputs.shown(value)} is not an officer id (letters, digits, "
                             f"'.', '-', '_' or '@', at most {inputs.MAX_ID} characters)")
    return value


def _dossier_code(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 120 or not _DOSSIER_CODE.fullmatch(value):
        raise DossierNotFound(f"{inputs.shown(value)} is not a dossier code (expected "
                              f"DESK-YYMMDD-NNNN, e.g. AN-BINH-MC-250701-0001)")
    return value


def _validate_form(step: StepInfo | None, data: dict[str, Any], dossier_code: str,
                   given: Iterable[str] = ()) -> None:
    """The data of a completion is the step's form: every field named must be one of
    the step's (so a step cannot change what another step decided), required fields must
    be given (in ``data``, or ``given`` on the task already), and choices respected."""
    given = set(given)
    fields = {f.name: f for f in (step.form if step else ())}
    for key in data:
        if not _FIELD_NAME.fullmatch(key):
            raise InvalidInput(f"dossier {dossier_code}: field name {key!r} must start with a "
                               f"letter and use letters, digits and '_'")
        if key in RESERVED_FIELDS:
            raise InvalidInput(f"dossier {dossier_code}: field {key!r} is set by the engine "
                               f"and cannot be changed by a form")
        if step is not None and key not in fields:
            listed = ", ".join(fields) if fields else "none: it takes no data"
            raise InvalidInput(f"dossier {dossier_code}: step {step.id} has no field {key!r} "
                               f"(its fields: {listed})")
    for form_field in fields.values():
        if form_field.name not in data or data[form_field.name] in (None, ""):
            if form_field.required and form_field.name not in given:
                hint = f" (one of: {', '.join(form_field.choices)})" if form_field.choices else ""
                raise InvalidInput(f"dossier {dossier_code}: step {step.id if step else '?'} "
                                   f"needs field {form_field.name!r}{hint}")
            continue
        if form_field.choices and data[form_field.name] not in form_field.choices:
            raise InvalidInput(f"dossier {dossier_code}: field {form_field.name!r} of step "
                               f"{step.id if step else '?'} is {data[form_field.name]!r}; "
                               f"allowed: {', '.join(form_field.choices)}")
