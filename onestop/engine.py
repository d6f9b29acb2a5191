"""The engine: the public facade a portal backend calls.

Each command (receive, claim, release, reassign, complete, message, start_apology, a
timer firing, add_officer) runs in one store transaction through one command path
(:meth:`Engine._command`): either everything it changes is stored — the dossier, its
tasks, its timers, its events — or nothing is, and the engine's in-memory workflow cache
never keeps a state the store did not get. A command that moves a dossier validates its
input, loads the dossier and its workflow, runs the process (:mod:`onestop.bpmn`), lets
the one-stop rules decide what that changes (:func:`onestop.rules.progress.decide`) and
saves the decision. Queries (dossier, history, events, sla, inbox, task) read committed
data only. Every error that leaves a public method is an
:class:`~onestop.errors.OnestopError` naming the dossier, task, officer or field at fault.
See docs/architecture.md.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from functools import partial
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, Sequence
from uuid import UUID

from . import inputs
from .bpmn import Instance, ProcessModel, StepInfo, evaluate, model_dictionary, model_from_body
from .bpmn.extensions import PORTAL_SENDER
from .bpmn.runtime import Connector, late_path_after, script_engine
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
from .events import (
    EVENT_SCHEMA,
    ApologyRequested,
    Claimed,
    Completed,
    FeedbackAnswered,
    FeedbackReceived,
    MessageReceived,
    Rated,
    Reassigned,
    Received,
    Released,
    TimerFired,
    encode,
    upcast,
)
from .library import Library, load_library
from .model import (
    Channel,
    Dossier,
    DossierStatus,
    DossierSummary,
    Event,
    EventKind,
    Feedback,
    FiredTimer,
    Officer,
    OutboxMessage,
    Task,
)
from .regimes import Regime, Regimes
from .rules import late_path, records
from .rules.facts import FACTS_VERSION, RATING_LEVELS, Fold, fold, identity_number
from .rules.facts import stored as stored_facts
from .rules.forms import (
    RESERVED_FIELDS,
    blanks,
    check_form,
    check_message_fields,
    check_message_names,
    check_sender,
)
from .rules.intake import PORTAL_ACTOR, RECEIVING_ROLE, check_desk, intake, receiver
from .rules.progress import (
    Case,
    Done,
    Entry,
    Happening,
    Late,
    Progress,
    Waiting,
    apology_side,
    apology_timer,
    decide,
    late_answer,
)
from .rules.sla import SlaReport, assess
from .rules.sync import notices
from .store import (
    DossierQuery,
    DossierRow,
    EventQuery,
    EventRow,
    OpenTaskRow,
    Store,
    TaskRow,
    Unit,
    open_store,
)

__all__ = ["DELAY_REASON", "Engine", "LEADER_ROLE", "NEW_APPOINTMENT", "PORTAL_ACTOR",
           "RECEIVING_ROLE", "RESERVED_FIELDS"]

#: The role of an agency's head: may release or reassign any claim on the agency's tasks.
LEADER_ROLE = "leader"
#: Form fields of the apology path: the responsible agency's reason and proposed date.
DELAY_REASON, NEW_APPOINTMENT = late_path.DELAY_REASON, late_path.NEW_APPOINTMENT

_DOSSIER_CODE = re.compile(r"(?P<desk>[A-Za-z0-9][A-Za-z0-9._-]*)-(?P<day>\d{6})-(?P<seq>\d{4,})")
_OFFICER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")
_CANONICAL_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Engine:
    """Runs dossiers through BPMN internal procedures, durably.

    >>> engine = Engine("sqlite:///onestop.db")            # doctest: +SKIP
    >>> dossier = engine.receive("2.000815", applicant={"name": "Nguyễn Văn A"},
    ...                          components=["ban-chinh"], officer="tn.an")  # doctest: +SKIP

    ``database`` is a SQLAlchemy URL, a SQLite file path, ``memory://NAME`` for the
    in-memory store, or a store already opened (:func:`onestop.store.open_store`; the
    engine closes it). Keyword-only:

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

    def __init__(self, database: str | os.PathLike[str] | Store = "onestop.db", *,
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
        self._effective: dict[tuple[str, str | None], Regime] = {}
        self._model_views: dict[str, tuple[Any, Any]] = {}
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
            self._refresh_facts()
        except BaseException:
            self._store.close()
            raise

    def _refresh_facts(self) -> None:
        """Fold again from their logs the facts of dossiers an older release wrote (or
        none yet, after an upgrade), a batch per transaction."""
        after = 0
        while True:
            with self._store.read() as reader:
                stale = reader.stale_facts(FACTS_VERSION, after, _FACTS_BATCH)
            if not stale:
                return
            with self._store.write() as tx:
                for dossier_id in stale:
                    row = tx.dossier_by_id(dossier_id)
                    if row is None:
                        continue
                    facts = fold(self._history(tx, dossier_id), row.received_at,
                                 self.library.calendars.for_agency(row.desk_agency))
                    tx.update_facts(dossier_id, facts.columns())
            after = stale[-1]

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
        handed in and are not digitized again (tái sử dụng dữ liệu). Give them as a
        mapping to say where each came from (``{"cccd": "CSDLQG-DC"}``).

        The dossier's legal time is its channel's (the catalogue's
        ``legal_time_by_channel``, else ``legal_time``).

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
        held_codes = inputs.codes("held", list(held) if isinstance(held, Mapping) else held)
        held_from = records.sources(held_codes, held)
        brought = intake(proc, channel, inputs.codes("components", components), held_codes)
        legal_time = proc.legal_time_for(channel)
        if officer is not None:
            officer = inputs.identifier("officer", officer)
        if desk is not None:
            catalog.agency(inputs.identifier("desk", desk))
        resolver = proc.agency if resolving_agency is None else \
            inputs.identifier("resolving_agency", resolving_agency)
        catalog.agency(resolver)
        model = self.library.model_for(proc)
        spec_id = self._spec_ids[model.spec_hash]
        now = self._now()
        regime = proc.effective_regime(self._regimes().at(now))
        with self._command() as command:
            tx = command.tx
            clerk = self._officer(tx, officer) if officer is not None else None
            desk, actor = receiver(channel, clerk, desk)
            # Checked before the dossier takes a number: a refused receipt stores nothing.
            check_desk(proc, desk, lambda code: catalog.agency(code).kind)
            day = now.astimezone(VIETNAM_TZ).strftime("%y%m%d")
            code = f"{desk}-{day}-{tx.next_sequence(f'{desk}:{day}'):04d}"
            case = Case(code=code, desk=desk, resolver=resolver, slots=proc.agencies,
                        status=DossierStatus.NEWLY_REGISTERED, regime=regime,
                        procedure=proc.code, legal_time=legal_time, appointment_at=None,
                        paused_at=None, received_at=now, now=now,
                        calendars=self.library.calendars, history=list,
                        late_path_after=partial(late_path_after, model),
                        step_named=partial(_find_step, model), evaluate=evaluate,
                        due_soon=self.due_soon)
            instance, progress = self._advance(
                case, None, lambda: Instance.start(model, brought.variables(), self._script,
                                                   self._dictionaries[spec_id]),
                actor=actor)
            info = {"applicant": applicant, "components": list(brought.components),
                    "agencies": dict(proc.agencies), "held": list(brought.held)}
            values = {
                "code": code, "procedure": proc.code,
                "spec_id": spec_id,
                "status": int(progress.status), "channel": int(channel),
                "desk_agency": desk, "resolving_agency": resolver, "received_at": now,
                "received_by": actor, "finished_at": now if progress.finished else None,
                "regime": regime.code, "appointment_at": progress.appointment_at,
                "paused_at": progress.paused_at, "info": info, "state": instance.dump(),
            }
            received = Received(
                procedure=proc.code, channel=int(channel), desk=desk, applicant=applicant,
                procedure_name=proc.name, legal_time=str(legal_time),
                model=model.spec_hash, resolving_agency=resolver,
                agencies=dict(proc.agencies), regime=regime.code,
                boundary_free=proc.boundary_free, components=brought.components,
                held=brought.held, to_digitize=brought.to_digitize, missing=brought.missing,
                fee_due=brought.fee_due, sources=held_from)
            first = Entry(now, received, None, actor, desk)
            # The dossier's facts, folded from its first entries, go in with it.
            facts = fold((first, *progress.events), now,
                         self.library.calendars.for_agency(desk))
            values.update(facts.columns())
            dossier_id = tx.insert_dossier(values)
            self._write_progress(tx, values, dossier_id, 1, progress, first, facts.due_at)
            if not progress.finished:
                command.keep(dossier_id, 1, instance)
            return self._snapshot(values, progress.new_tasks, model)

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
                command.tx.append_events(_stored(
                    [Entry(now, Claimed(), row.step, officer, row.agency)], row.id))
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
            tx.append_events(_stored([Entry(
                now, Released(holder if holder != officer else None), row.step, officer,
                row.agency)], row.id))
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
            tx.append_events(_stored([Entry(now, Reassigned(row.claimed_by, officer), row.step,
                                            by, row.agency)], row.id))
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
            known, prefilled = instance.task_data(row.task_id)
            # A field the engine filled in on the task (a proactive apology's reason)
            # counts as given.
            given = {k for k in prefilled if known.get(k) not in (None, "")}
            check_form(step, data, row.code, given)
            case = self._case(row, tx, now, model)
            late = late_answer(case, step, {**known, **data}, officer=officer,
                               agency=row.agency) \
                if step is not None and step.sla is not None else None
            # An optional field left blank is None in the process data, so conditions can
            # test it, unless the dossier already has it; the log keeps what was given.
            filled = {**blanks(step, data, known), **data}
            instance, progress = self._advance(
                case, instance, lambda: (instance, instance.complete(row.task_id, filled)),
                actor=officer, completed=Done(row.task_id, row.step, row.agency), late=late)
            if not tx.take_task(row.task_id, officer):
                raise TaskNotOpen(f"task {task_id} of dossier {row.code} was completed or "
                                  f"claimed by another command meanwhile")
            done = Entry(now, Completed(data), row.step, officer, row.agency)
            values = self._save(command, row, instance, progress, now, done)
            # Sequential flows (the usual case): what is open now is what just opened.
            open_rows = tx.open_tasks(row.id) if progress.stayed else progress.new_tasks
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
            case = self._case(row, tx, now, model)
            side = apology_side(case, clerk, row.finished_at is not None)
            instance = command.load(self, row, model)
            timer = apology_timer(case, [t.step for t in instance.open_tasks()],
                                  instance.late_steps(), _waiting(instance))

            def fire() -> tuple[Instance, list[StepInfo]]:
                was_open = instance.open_task_ids()
                passed = instance.fire(timer.id)
                if given is not None:
                    for task in instance.open_tasks():
                        if task.step.sla == late_path.PROPOSE and task.id not in was_open \
                                and any(f.name == DELAY_REASON for f in task.step.form):
                            instance.update_task_data(task.id, {DELAY_REASON: given})
                return instance, passed

            # The fired timer's row goes with the rest of those the process left.
            instance, progress = self._advance(case, instance, fire, actor=officer)
            started = Entry(now, ApologyRequested(given, _local_or_none(timer.due)),
                            timer.step.id, officer, side)
            values = self._save(command, row, instance, progress, now, started)
            return self._snapshot(values, tx.open_tasks(row.id), model)

    # -- records the indicators count ---------------------------------------------
    def record_digitization(self, code: str, officer: str,
                            documents: Mapping[str, str]) -> Dossier:
        """Record components scanned and signed (số hóa): ``documents`` maps component
        codes of the procedure to the digitized copies' document codes. A dossier counts
        as digitized once every component it had to digitize (handed in on paper, marked
        ``must_digitize``) is. ``officer`` must hold a role in one of its agencies."""
        return self._record(code, officer, False, lambda r, p, row, now:
                            records.digitization(r, p, documents))

    def record_reuse(self, code: str, officer: str, sources: Mapping[str, str]) -> Dossier:
        """Record components taken from the state's databases instead of asking the
        applicant (tái sử dụng dữ liệu): component code -> the database
        (``{"giay-khai-sinh": "CSDL-HoTich"}``); each must be marked ``reusable``. Data
        held at receipt is recorded by :meth:`receive` (``held``)."""
        return self._record(code, officer, False, lambda r, p, row, now:
                            records.reuse(r, p, sources))

    def record_payment(self, code: str, amount: int, *, online: bool,
                       officer: str | None = None, portal: bool = False,
                       reference: str | None = None) -> Dossier:
        """Record a fee paid: ``amount`` in whole VND, ``online`` through the payment
        platform or at the desk, with the payment's ``reference``. Said by an
        ``officer`` or by the portal (``portal=True``: the payment platform)."""
        return self._record(code, officer, portal, lambda r, p, row, now:
                            records.payment(r, amount, online, reference))

    def record_result(self, code: str, officer: str, *, electronic: bool, paper: bool,
                      documents: Iterable[str] = ()) -> Dossier:
        """Record how the result was issued: ``electronic`` (to the applicant's e-store
        on the national portal), on ``paper``, or both, with its documents' codes.
        :class:`RuleViolation` before the dossier is resolved."""
        return self._record(code, officer, False, lambda r, p, row, now:
                            records.result(r, electronic, paper, documents))

    def record_rating(self, code: str, level: str, *, feedback: int | None = None,
                      comment: str | None = None) -> Dossier:
        """Record the applicant's satisfaction, as the portal collects it: ``level``
        ``very_satisfied``, ``satisfied`` or ``dissatisfied``, with the dossier's
        handling (once it is resolved or has ended; once) or with the answer to their
        feedback number ``feedback`` (once it is answered; once)."""

        def build(record: records.Record, proc: Procedure | None, row: DossierRow,
                  now: datetime) -> Any:
            return records.rating(record, level, feedback, comment)

        return self._record(code, None, True, build)

    def record_feedback(self, code: str, text: str, *, kind: str = "phan_anh") -> Feedback:
        """Record the applicant's feedback (``kind`` ``phan_anh``) or petition
        (``kien_nghi``) on a dossier, from the portal; it must be answered within the
        regime's ``feedback_time`` (10 working days) on the desk's calendar. Returns it,
        numbered within the dossier."""

        def build(record: records.Record, proc: Procedure | None, row: DossierRow,
                  now: datetime) -> Any:
            regime = self._regime(row.regime, proc)
            due = self.library.calendars.for_agency(row.desk_agency).add(
                now, regime.feedback_time)
            return records.new_feedback(record, text, kind, _local(due))

        self._record(code, None, True, build)
        return self.feedback(code)[-1]

    def answer_feedback(self, code: str, number: int, officer: str, answer: str) -> Feedback:
        """Record the agency's answer to feedback ``number`` of a dossier (once); it is
        on time when given by the feedback's due instant."""

        def build(record: records.Record, proc: Procedure | None, row: DossierRow,
                  now: datetime) -> Any:
            return records.answer(record, number, answer, now)

        self._record(code, officer, False, build)
        return self.feedback(code)[number - 1]

    def feedback(self, code: str) -> list[Feedback]:
        """A dossier's feedback and petitions, by number, with their answers."""
        found: dict[int, Feedback] = {}
        for event in self.history(code):
            payload = event.payload
            if isinstance(payload, FeedbackReceived):
                found[payload.number] = Feedback(
                    event.dossier_code, payload.number, payload.kind_of, payload.text,
                    event.at, _local(payload.due or event.at))
            elif isinstance(payload, FeedbackAnswered) and payload.number in found:
                found[payload.number] = replace(
                    found[payload.number], answered_at=event.at, answered_by=event.actor,
                    answer=payload.answer, on_time=payload.on_time)
            elif isinstance(payload, Rated) and payload.feedback in found:
                number = int(payload.feedback or 0)
                found[number] = replace(found[number], rating=payload.level)
        return [found[n] for n in sorted(found)]

    def _record(self, code: str, officer: str | None, portal: bool,
                build: Callable[[records.Record, Procedure | None, DossierRow, datetime],
                                Any]) -> Dossier:
        """One record command: check who records, let the rules build the event from the
        dossier's log, append it and fold the dossier's facts again."""
        code = _dossier_code(code)
        if not isinstance(portal, bool):
            raise InvalidInput(f"portal must be True or False, not {inputs.shown(portal)}")
        if portal == (officer is not None):
            raise InvalidInput(f"dossier {code}: say who records it: officer='ID' for an "
                               f"officer, or portal=True for the portal channel")
        if officer is not None:
            officer = _officer_id(officer)
        with self._store.read() as reader:
            dossier_id = self._dossier_row(reader, code).id
        now = self._now()
        with self._command() as command:
            tx = command.tx
            clerk = self._officer(tx, officer) if officer is not None else None
            row = tx.dossier_by_id(dossier_id)               # locks the dossier
            if row is None:
                raise DossierNotFound(f"no dossier with code {code}")
            history = self._history(tx, row.id)
            proc = self.library.catalog.procedures.get(row.procedure)
            record = records.read(row.code, row.procedure, row.finished_at is not None,
                                  history)
            agencies = [row.desk_agency, row.resolving_agency,
                        *row.info.get("agencies", {}).values()]
            agency = records.acting_agency(record, clerk, agencies) \
                if clerk is not None else None
            payload = build(record, proc, row, now)
            entry = Entry(now, payload, None, clerk.id if clerk else PORTAL_ACTOR, agency)
            tx.append_events(_stored([entry], row.id))
            facts = fold([*history, entry], row.received_at,
                         self.library.calendars.for_agency(row.desk_agency))
            if facts != stored_facts(row):
                tx.update_facts(row.id, facts.columns())
            self._feedback_row(tx, row.id, payload, now)
            return self._snapshot(row.dossier(), tx.open_tasks(row.id),
                                  self._model(tx, row.spec_id))

    @staticmethod
    def _feedback_row(tx: Unit, dossier_id: int, payload: Any, now: datetime) -> None:
        """Keep the feedback table (what the index counts by period) with the log."""
        if payload.kind is EventKind.FEEDBACK_RECEIVED:
            tx.insert_feedback({"dossier_id": dossier_id, "number": payload.number,
                                "kind": payload.kind_of, "received_at": now,
                                "due_at": payload.due})
        elif payload.kind is EventKind.FEEDBACK_ANSWERED:
            tx.update_feedback(dossier_id, payload.number, answered_at=now)
        elif payload.kind is EventKind.RATED and payload.feedback is not None:
            tx.update_feedback(dossier_id, payload.feedback,
                               rating=RATING_LEVELS[payload.level])

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
        check_message_names(code, name, payload)
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
            case = self._case(row, tx, now, model)
            check_sender(row.code, name, catching, clerk, case.agencies())
            check_message_fields(row.code, name, payload, catching, model.user_steps())
            actor = clerk.id if clerk is not None else PORTAL_ACTOR
            instance, progress = self._advance(
                case, instance, lambda: (instance, instance.deliver(name, payload)),
                actor=actor)
            step = catching[0] if catching else None
            received = Entry(now, MessageReceived(name, payload),
                             step.id if step is not None else None, actor,
                             case.agency_for(step) if step is not None else None)
            values = self._save(command, row, instance, progress, now, received)
            return self._snapshot(values, tx.open_tasks(row.id), model)

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

                def fire() -> tuple[Instance, list[StepInfo]]:
                    try:
                        return instance, instance.fire(timer_id)
                    except ProcessError as exc:
                        raise ProcessError(exc.reason, element=exc.element or step) from None

                case = self._case(row, tx, now, model)
                instance, progress = self._advance(case, instance, fire, actor=None,
                                                   fired=timer_id)
                fired = Entry(now, TimerFired(_local(due_at)), step)
                self._save(command, row, instance, progress, now, fired)
                return row.code, due_at
        except OnestopError as exc:
            raise _TimerFailed(code, exc) from exc
        except Exception as exc:  # noqa: BLE001 - one dossier must not stop the sweep
            raise _TimerFailed(code, ProcessError(f"{type(exc).__name__}: {exc}",
                                                  dossier=code or None, element=step)) from exc

    # -- the command path ------------------------------------------------------------
    def _command(self) -> "_Command":
        """One command, one transaction. Workflows a command loads are changed in place;
        if it fails anywhere — including the commit — they are dropped from the cache,
        and what it keeps enters the cache only once the commit succeeded."""
        return _Command(self)

    def _case(self, row: DossierRow, tx: Unit, now: datetime,
              model: ProcessModel) -> Case:
        """The dossier of ``row`` as the rules see it."""
        proc = self.library.catalog.procedures.get(row.procedure)
        return Case(code=row.code, desk=row.desk_agency, resolver=row.resolving_agency,
                    slots=row.info.get("agencies", {}), status=DossierStatus(row.status),
                    regime=self._regime(row.regime, proc),
                    procedure=row.procedure,
                    legal_time=proc.legal_time_for(row.channel) if proc is not None else None,
                    appointment_at=_local_or_none(row.appointment_at),
                    paused_at=_local_or_none(row.paused_at),
                    received_at=_local(row.received_at), now=now,
                    calendars=self.library.calendars,
                    history=lambda: self._history(tx, row.id),
                    late_path_after=self._walks(model)[0], step_named=self._walks(model)[1],
                    evaluate=evaluate, due_soon=self.due_soon)

    def _walks(self, model: ProcessModel) -> tuple[Any, Any]:
        """The late-path walk and the step lookup of a model, as the rules take them."""
        found = self._model_views.get(model.spec_hash)
        if found is None:
            found = self._model_views[model.spec_hash] = (
                partial(late_path_after, model), partial(_find_step, model))
        return found

    @staticmethod
    def _advance(case: Case, before: Instance | None,
                 run: Callable[[], tuple[Instance, list[StepInfo]]], *, actor: str | None,
                 completed: Done | None = None, late: Late | None = None,
                 fired: str | None = None) -> tuple[Instance, Progress]:
        """The middle of every command that moves a dossier: run its process (``run``,
        on the workflow ``before``, or starting one), let the rules decide what that
        changes, and give the workflow the due instants of its timers. ``fired``: the
        timer ``run`` fires, whose row the store has already taken."""
        was_open = {t.id for t in before.open_tasks()} if before is not None else set()
        was_timers = before.timer_ids() - {fired} if before is not None else set()
        try:
            instance, passed = run()
        except ProcessError as exc:
            raise ProcessError(exc.reason, dossier=case.code, element=exc.element) from None
        happening = Happening(
            passed=passed, open_tasks=[(t.id, t.step) for t in instance.open_tasks()],
            was_open=was_open, step_of=instance.step_of, withdrawn=instance.withdrawn,
            timers=partial(_waiting, instance),
            timer_ids=instance.timer_ids(), was_timers=was_timers,
            finished=instance.completed, late_steps=instance.late_steps,
            completed=completed)
        progress = decide(case, happening, case.now, actor=actor, late=late)
        for timer_id, due in progress.schedule:
            instance.schedule(timer_id, due)
        return instance, progress

    def _save(self, command: "_Command", row: DossierRow, instance: Instance,
              progress: Progress, now: datetime, first: Entry) -> dict[str, Any]:
        """Store what a command changed; returns the dossier's new columns."""
        tx = command.tx
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
        before = stored_facts(row)
        after = Fold(before, row.received_at,
                     self.library.calendars.for_agency(row.desk_agency),
                     row.paused_at).read((first, *progress.events))
        if after != before:
            tx.update_facts(row.id, after.columns())
        self._write_progress(tx, row, row.id, version, progress, first, after.due_at)
        if not progress.finished:
            # A finished dossier's workflow never runs again: it is not cached.
            command.keep(row.id, version, instance)
        return dict(row.dossier(), status=int(progress.status), state=state,
                    finished_at=finished_at, appointment_at=progress.appointment_at,
                    paused_at=progress.paused_at)

    @staticmethod
    def _write_progress(tx: Unit, row: DossierRow | Mapping[str, Any], dossier_id: int,
                        version: int, progress: Progress, first: Entry,
                        due_at: datetime | None) -> None:
        """Append a command's events, tasks, timers and portal messages."""
        entries = (first, *progress.events)
        tx.append_events(_stored(entries, dossier_id))
        facts: Mapping[str, Any] = row if isinstance(row, Mapping) else row.dossier()
        code = str(facts["code"])
        told = notices(code=code, procedure=str(facts["procedure"]),
                       channel=int(facts["channel"]), received_at=_local(facts["received_at"]),
                       entries=entries, appointment_at=progress.appointment_at,
                       status=int(progress.status), due_at=_local_or_none(due_at))
        if told:
            tx.append_outbox([{"dossier_id": dossier_id, "key": f"{code}:{version}:{n}",
                               "kind": notice.kind, "status": notice.status, "at": notice.at,
                               "payload": notice.payload}
                              for n, notice in enumerate(told, 1)])
        tx.insert_tasks([{"id": t.id, "dossier_id": dossier_id, "step": t.step,
                          "role": t.role, "agency": t.agency, "claimed_by": None,
                          "ready_at": t.ready_at, "due_at": t.due_at}
                         for t in progress.new_tasks])
        tx.insert_timers([{"id": timer_id, "dossier_id": dossier_id, "step": step,
                           "due_at": due} for timer_id, step, due in progress.new_timers])

    # -- queries -------------------------------------------------------------------
    def dossier(self, code: str) -> Dossier:
        """A snapshot of a dossier: status, open steps and who holds them."""
        code = _dossier_code(code)
        with self._store.read() as tx:
            row = self._dossier_row(tx, code)
            return self._snapshot(row.dossier(), tx.open_tasks(row.id),
                                  self._model(tx, row.spec_id))

    def dossiers(self, *, status: DossierStatus | int | Iterable[DossierStatus | int] = (),
                 agency: str | None = None, procedure: str | None = None,
                 channel: Channel | int | None = None, since: datetime | None = None,
                 until: datetime | None = None, applicant_id: str | None = None,
                 after: int = 0, limit: int = 50,
                 newest_first: bool = False) -> list[DossierSummary]:
        """List and search dossiers, a page at a time: of any of the statuses
        ``status``, received or resolved by ``agency`` (desk or resolving agency), of a
        ``procedure`` or ``channel``, received at or after ``since`` and before
        ``until``, of the applicant whose identity number (``applicant["id_number"]``
        at receipt; spaces and dots ignored) is ``applicant_id``. In receipt order (or
        ``newest_first``); at most ``limit`` (1 to 1000); pass the last ``id`` seen as
        ``after`` for the next page. Filters are refused here, before any read."""
        statuses = self._statuses(status)
        if channel is not None:
            try:
                channel = Channel(channel)
            except (ValueError, TypeError):
                raise InvalidInput(f"channel {inputs.shown(channel)} must be 1 (in person), "
                                   f"2 (online) or 3 (postal)") from None
        for name, value in (("since", since), ("until", until)):
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None
                                      or value.utcoffset() is None):
                raise InvalidInput(f"{name} must be a timezone-aware datetime, not "
                                   f"{inputs.shown(value)}")
        if agency is not None:
            agency = inputs.identifier("agency", agency)
        if procedure is not None:
            procedure = inputs.identifier("procedure", procedure)
        wanted_id = None
        if applicant_id is not None:
            wanted_id = identity_number({"id_number": applicant_id}) \
                if isinstance(applicant_id, str) else None
            if wanted_id is None:
                raise InvalidInput(f"applicant_id must be an identity number (text), not "
                                   f"{inputs.shown(applicant_id)}")
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**63:
            raise InvalidInput(f"after must be a dossier id (a whole number >= 0), not "
                               f"{inputs.shown(after)}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise InvalidInput(f"limit must be a whole number from 1 to 1000, not "
                               f"{inputs.shown(limit)}")
        if not isinstance(newest_first, bool):
            raise InvalidInput(f"newest_first must be True or False, not "
                               f"{inputs.shown(newest_first)}")
        query = DossierQuery(after=after, limit=limit, statuses=statuses, agency=agency,
                             procedure=procedure,
                             channel=int(channel) if channel is not None else None,
                             since=since, until=until, applicant_id=wanted_id,
                             newest_first=newest_first)
        with self._store.read() as reader:
            rows = reader.search(query)
        return [self._summary(row) for row in rows]

    @staticmethod
    def _statuses(status: Any) -> tuple[int, ...]:
        given = [status] if isinstance(status, (int, DossierStatus)) else status
        found: list[int] = []
        try:
            for each in given:
                found.append(int(DossierStatus(each)))
        except (ValueError, TypeError):
            raise InvalidInput(f"status must be dossier status codes (1 to 10), not "
                               f"{inputs.shown(status)}") from None
        return tuple(found)

    def _summary(self, row: DossierRow) -> DossierSummary:
        proc = self.library.catalog.procedures.get(row.procedure)
        applicant = row.info.get("applicant", {})
        name = applicant.get("name") if isinstance(applicant, dict) else None
        return DossierSummary(
            id=row.id, code=row.code, procedure=row.procedure,
            procedure_name=proc.name if proc else row.procedure,
            status=DossierStatus(row.status), channel=Channel(row.channel),
            desk_agency=row.desk_agency, resolving_agency=row.resolving_agency,
            received_at=_local(row.received_at),
            applicant_name=name if isinstance(name, str) else None,
            applicant_id=row.applicant_id, due_at=_local_or_none(row.due_at),
            appointment_at=_local_or_none(row.appointment_at),
            resolved_at=_local_or_none(row.resolved_at),
            finished_at=_local_or_none(row.finished_at))

    def history(self, code: str) -> list[Event]:
        """Every event of a dossier, oldest first."""
        code = _dossier_code(code)
        with self._store.read() as tx:
            return self._history(tx, self._dossier_row(tx, code).id)

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
            events = self._history(tx, row.id)
        return self._assess(row.code, row.desk_agency, events, self._now(), threshold)

    @staticmethod
    def _history(tx: Unit, dossier_id: int) -> list[Event]:
        return [_public(e) for e in tx.events(dossier_id)]

    def _assess(self, code: str, desk: str, events: Sequence[Event], now: datetime,
                due_soon: Duration | None = None) -> SlaReport:
        return assess(code, events, _local(now), self.library.calendars, desk,
                      due_soon or self.due_soon)

    def events(self, *, after: int = 0, kinds: Iterable[EventKind | str] = (),
               agency: str | None = None, procedure: str | None = None,
               since: datetime | None = None, until: datetime | None = None,
               limit: int | None = None, page: int = 1000) -> Iterator[Event]:
        """The event log across dossiers, oldest first: what reports, forms and exports
        read, a page at a time, never a dossier at a time.

        Only events after the event id ``after`` (0: from the start; pass the ``id`` of
        the last event seen to read on), of the ``kinds`` given (all when empty), of an
        ``agency`` or a ``procedure``, at or after ``since`` and before ``until``; at most
        ``limit`` (None: all). Each page of ``page`` events is read in its own short read
        (keyset pagination on the id), so iterating over a year of events holds no lock
        and commands go on meanwhile. Bad arguments are refused here, before any read.

        Ids follow the order events were written in. On PostgreSQL commands on different
        dossiers commit side by side, so an event can become visible after one with a
        higher id: a reader that follows the log as it grows should read up to an
        ``until`` a little in the past, or go back a little before its last ``after``
        (ids it has seen are never reused). On SQLite and in memory commands commit one
        at a time.
        """
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**63:
            raise InvalidInput(f"after must be an event id (a whole number from 0 to "
                               f"2**63 - 1), not {inputs.shown(after)}")
        if isinstance(kinds, (str, EventKind)):
            kinds = [kinds]
        wanted: list[str] = []
        for kind in kinds:
            try:
                wanted.append(EventKind(kind).value)
            except ValueError:
                raise InvalidInput(f"kinds: {inputs.shown(kind)} is not an event kind "
                                   f"(one of: {', '.join(k.value for k in EventKind)})") \
                    from None
        for name, value in (("since", since), ("until", until)):
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None
                                      or value.utcoffset() is None):
                raise InvalidInput(f"{name} must be a timezone-aware datetime, not "
                                   f"{inputs.shown(value)}")
        if agency is not None:
            agency = inputs.identifier("agency", agency)
        if procedure is not None:
            procedure = inputs.identifier("procedure", procedure)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 0):
            raise InvalidInput(f"limit must be a whole number >= 0 or None, not "
                               f"{inputs.shown(limit)}")
        if isinstance(page, bool) or not isinstance(page, int) or not 1 <= page <= 10_000:
            raise InvalidInput(f"page must be a whole number from 1 to 10000, not "
                               f"{inputs.shown(page)}")
        query = EventQuery(after=after, kinds=tuple(wanted), agency=agency,
                           procedure=procedure, since=since, until=until, limit=page)
        return self._event_pages(query, limit)

    def _event_pages(self, query: EventQuery, limit: int | None) -> Iterator[Event]:
        given = 0
        while limit is None or given < limit:
            size = query.limit if limit is None else min(query.limit, limit - given)
            with self._store.read() as reader:
                rows = reader.event_stream(replace(query, limit=size))
            for row in rows:
                yield _public(row)
            given += len(rows)
            if len(rows) < size:
                return
            query = replace(query, after=rows[-1].id)

    def outbox(self, *, limit: int = 100, after: int = 0) -> list[OutboxMessage]:
        """Messages for the national portal not marked sent yet, oldest first: one for
        each receipt, status change and appointment change, written in the same
        transaction as the change (so none is lost or made up, whatever fails between
        commands). ``after``: a message ``id`` to read on from. A sending worker sends
        them in order and calls :meth:`mark_sent`."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit must be a whole number from 1 to 10000, not "
                               f"{inputs.shown(limit)}")
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < 2**63:
            raise InvalidInput(f"after must be a message id (a whole number >= 0), not "
                               f"{inputs.shown(after)}")
        with self._store.read() as reader:
            rows = reader.outbox(after, limit)
        return [OutboxMessage(key=r.key, dossier_code=r.dossier_code, kind=r.kind,
                              status=DossierStatus(r.status), at=_local(r.at),
                              payload=r.payload, id=r.id) for r in rows]

    def mark_sent(self, keys: Iterable[str]) -> int:
        """Mark portal messages sent (by key), at the engine's clock; how many were still
        pending (a key sent before, or unknown, counts nothing)."""
        if isinstance(keys, str):
            keys = [keys]
        found = []
        for key in keys:
            if not isinstance(key, str) or not key or len(key) > 160:
                raise InvalidInput(f"a message key is the text outbox() gave, not "
                                   f"{inputs.shown(key)}")
            found.append(key)
        now = self._now()
        with self._command() as command:
            return command.tx.mark_sent(found, now)

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

    def _regime(self, code: str, proc: Procedure | None) -> Regime:
        """The regime a dossier was received under, with its procedure's overrides."""
        key = (code, proc.code if proc is not None else None)
        found = self._effective.get(key)
        if found is None:
            regime = self._regimes().get(code)
            found = proc.effective_regime(regime) if proc is not None else regime
            self._effective[key] = found
        return found

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
        open_tasks = [_open_task(model, task.id, row["code"], task,
                                 getattr(task, "claimed_by", None), task.due_at)
                      for task in open_rows]
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
#: Dossiers whose facts are folded again per transaction when an engine opens.
_FACTS_BATCH = 500


class _TimerFailed(Exception):
    """A timer whose dossier could not move on (the sweep reports it and goes on)."""

    def __init__(self, code: str, error: OnestopError) -> None:
        super().__init__(str(error))
        self.code, self.error = code, error


class _Command:
    """What one command touches (a context manager around its store unit): the unit,
    the dossiers whose workflows it loaded (dropped from the cache if it fails), and the
    workflows to cache once it has committed."""

    __slots__ = ("_engine", "_scope", "tx", "touched", "kept")

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._scope = engine._store.command()
        self.touched: set[int] = set()
        self.kept: list[tuple[int, int, Instance]] = []

    def __enter__(self) -> "_Command":
        self.tx: Unit = self._scope.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 trace: Any) -> Literal[False]:
        engine = self._engine
        failed = kind is not None
        try:
            self._scope.__exit__(kind, exc, trace)      # commits, or rolls back
        except BaseException:
            failed = True
            raise
        finally:
            if failed:
                with engine._cache_lock:
                    for dossier_id in self.touched | {k[0] for k in self.kept}:
                        engine._instances.pop(dossier_id, None)
        if not failed:
            for dossier_id, version, instance in self.kept:
                engine._remember(dossier_id, version, instance)
        return False

    def load(self, engine: Engine, row: TaskRow | DossierRow,
             model: ProcessModel) -> Instance:
        self.touched.add(row.id)
        return engine._instance(row, model)

    def keep(self, dossier_id: int, version: int, instance: Instance) -> None:
        self.kept.append((dossier_id, version, instance))


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


def _waiting(instance: Instance) -> list[Waiting]:
    """The timers a workflow waits on, as the rules see them."""
    return [Waiting(t.id, t.step, t.expression, t.due, t.data) for t in instance.timers()]


def _stored(entries: Iterable[Entry], dossier_id: int) -> list[dict[str, Any]]:
    """Log entries as the store's event rows, encoded under the current schema."""
    return [{"dossier_id": dossier_id, "at": e.at, "kind": e.payload.kind.value,
             "step": e.step, "actor": e.actor, "agency": e.agency,
             "detail": encode(e.payload), "version": EVENT_SCHEMA} for e in entries]


def _public(row: EventRow) -> Event:
    """A stored event as the public Event (its payload upcast to the current schema)."""
    try:
        detail = upcast(row.kind, row.detail, row.version)
        kind = EventKind(row.kind)
    except ValueError as exc:
        raise StoreError(f"event {row.id} of dossier {row.dossier_code} cannot be read: "
                         f"{exc}") from None
    return Event(dossier_code=row.dossier_code, at=_local(row.at), kind=kind,
                 step=row.step, actor=row.actor, agency=row.agency, detail=detail or {},
                 id=row.id, procedure=row.procedure)


def _local(instant: datetime) -> datetime:
    return instant.astimezone(VIETNAM_TZ)


def _local_or_none(instant: datetime | None) -> datetime | None:
    return instant.astimezone(VIETNAM_TZ) if instant is not None else None


def _task_id(value: Any) -> str:
    """A task id as the engine issues them (a UUID); TaskNotFound for anything else."""
    if isinstance(value, str) and _CANONICAL_ID.fullmatch(value):
        return value                                 # as the engine writes them
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
