"""What a command changes, decided without I/O.

After the engine has run a dossier's process (a start, a completion, a message, a timer),
:func:`decide` is given the dossier as it stood (:class:`Case`) and what just happened in
the process (:class:`Happening`), and says what changes: the events to log, the tasks
that opened (with their role, agency and deadline) and closed, the timers to schedule,
move or drop, the status, the appointment and the service-level clock. The late path's
answers are checked before a step completes (:func:`late_answer`).

Nothing here reads or writes a database or touches SpiffWorkflow: the engine hands in
plain values (steps, task and timer ids, the dossier's history on demand) and a function
that evaluates model expressions in its sandbox, and stores the decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Collection, Mapping, Sequence

from ..allotment import CUTOFF
from ..calendar import Calendars, WorkingCalendar
from ..clock import VIETNAM_TZ
from ..duration import Duration
from ..errors import InvalidInput, ModelError, PermissionDenied, ProcessError, RuleViolation
from ..events import (
    AppointmentSet,
    DelayAssessed,
    Event,
    EventKind,
    Finished,
    HandedOver,
    Payload,
    StatusChanged,
    SupplementRequested,
    TaskCancelled,
    TaskReady,
)
from ..model import DossierStatus, Officer
from ..regimes import Regime
from ..steps import StepInfo
from ..timevalue import IsoDuration, literal, read_value, uses_sla
from . import late_path
from .deadlines import allotment_span, appointment, resumed_appointment, step_deadline
from .sla import assess

#: Evaluates a model expression with a scope (the engine's sandbox).
Evaluate = Callable[[str, Mapping[str, Any]], Any]
#: The late-path steps a flow node leads to: (the prompt, the letter).
LatePathAfter = Callable[[str], "tuple[StepInfo | None, StepInfo | None]"]


@dataclass(frozen=True)
class Entry:
    """An event to append to the log."""

    at: datetime
    payload: Payload
    step: str | None = None
    actor: str | None = None
    agency: str | None = None

    @property
    def kind(self) -> EventKind:
        """The payload's kind."""
        return self.payload.kind


@dataclass(frozen=True)
class NewTask:
    """A task that opened: who it waits for and by when."""

    id: str
    step: str
    role: str
    agency: str
    ready_at: datetime
    due_at: datetime | None


@dataclass(frozen=True)
class Waiting:
    """A timer event the process waits on (``due`` None: not scheduled)."""

    id: str
    step: StepInfo
    expression: str
    due: datetime | None
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Done:
    """The task a completion completed."""

    task_id: str
    step: str
    agency: str


@dataclass(frozen=True)
class Happening:
    """What running the process did, as plain values.

    ``open_tasks`` are the ready user tasks now (id, step); ``was_open`` their ids before
    the run; ``step_of`` gives the step of a task that went away; ``withdrawn`` the
    late-path tasks withdrawn because the activity they watched ended; ``timers`` the
    waiting timers now (read on demand), ``timer_ids`` their ids and ``was_timers`` the
    ids before; ``late_steps`` the late path's reached steps (part, state) on demand."""

    passed: Sequence[StepInfo]
    open_tasks: Sequence[tuple[str, StepInfo]]
    was_open: Collection[str]
    step_of: Callable[[str], StepInfo | None]
    withdrawn: Collection[str]
    timers: Callable[[], Sequence[Waiting]]
    timer_ids: Collection[str]
    was_timers: Collection[str]
    finished: bool
    late_steps: Callable[[], Sequence[tuple[str, str]]]
    completed: Done | None = None


@dataclass
class Progress:
    """What a command changes (see :func:`decide`)."""

    status: DossierStatus
    appointment_at: datetime | None
    paused_at: datetime | None
    events: list[Entry] = field(default_factory=list)
    new_tasks: list[NewTask] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    #: Tasks open before that are still open.
    stayed: list[str] = field(default_factory=list)
    new_timers: list[tuple[str, str, datetime | None]] = field(default_factory=list)
    gone_timers: list[str] = field(default_factory=list)
    rescheduled: list[tuple[str, datetime | None]] = field(default_factory=list)
    finished: bool = False
    #: An agency asked the applicant for a supplement during resolution.
    supplement_by: str | None = None
    #: A step of the late path opened, closed or was withdrawn.
    late_touched: bool = False

    @property
    def schedule(self) -> list[tuple[str, datetime | None]]:
        """The due instant of every timer scheduled or moved (for the workflow)."""
        return [(timer_id, due) for timer_id, _step, due in self.new_timers] + self.rescheduled


@dataclass(frozen=True)
class Late:
    """What a late-path step's answer adds: events, and the letter's re-appointment."""

    events: Sequence[Entry] = ()
    reappointment: tuple[datetime, AppointmentSet] | None = None


class Case:
    """A dossier as a command finds it, and the one-stop rules that apply to it: its
    appointment, step deadlines, timer due instants, the role and agency of each step,
    and who is responsible for a delay.

    ``history`` reads the dossier's event log (oldest first) when a rule needs it;
    ``late_path_after`` and ``step_named`` describe its process model; ``evaluate`` runs
    a model expression in the engine's sandbox."""

    def __init__(self, *, code: str, desk: str, resolver: str, slots: Mapping[str, str],
                 status: DossierStatus, regime: Regime, procedure: str,
                 legal_time: Duration | None, appointment_at: datetime | None,
                 paused_at: datetime | None, received_at: datetime, now: datetime,
                 calendars: Calendars, history: Callable[[], Sequence[Event]],
                 late_path_after: LatePathAfter,
                 step_named: Callable[[str], StepInfo | None], evaluate: Evaluate,
                 due_soon: Duration) -> None:
        self.code, self.desk, self.resolver = code, desk, resolver
        self.slots, self.status = dict(slots), status
        self.regime, self.procedure, self.legal_time = regime, procedure, legal_time
        self.appointment_at, self.paused_at = appointment_at, paused_at
        self.received_at, self.now = received_at, now
        self.calendars = calendars
        self._history = history
        self._events: Sequence[Event] | None = None
        self.late_path_after, self.step_named = late_path_after, step_named
        self.evaluate, self.due_soon = evaluate, due_soon
        self._responsible: str | None = None

    def calendar(self, agency: str | None = None) -> WorkingCalendar:
        """The working calendar of ``agency`` (default: the desk's)."""
        return self.calendars.for_agency(agency or self.desk)

    def agencies(self) -> set[str]:
        """The dossier's agencies: its desk, its resolver and the procedure's slots."""
        return {self.desk, self.resolver, *self.slots.values()}

    def events(self) -> Sequence[Event]:
        """The dossier's event log as stored before this command (read once)."""
        if self._events is None:
            self._events = self._history()
        return self._events

    def agency_for(self, step: StepInfo) -> str:
        """The agency that does ``step``: its slot (desk, resolver, the agency
        responsible for a delay, or one of the procedure's) resolved for this dossier."""
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
            found = assess(self.code, self.events(), self.now.astimezone(VIETNAM_TZ),
                           self.calendars, self.desk,
                           self.due_soon).responsible_agency(self.now)
            self._responsible = found or self.resolver
        return self._responsible

    def _legal(self) -> Duration:
        if self.legal_time is None:
            raise ModelError(f"procedure {self.procedure} is no longer in the catalogue")
        return self.legal_time

    def appoint(self, accepted: datetime) -> datetime:
        """The appointment of a dossier accepted as complete at ``accepted``."""
        return appointment(self.calendar(), self.regime, accepted, self._legal())

    def resume(self, appointment_at: datetime, paused_at: datetime, now: datetime) -> datetime:
        """The appointment once a supplement paused since ``paused_at`` came in."""
        return resumed_appointment(self.calendar(), self.regime, appointment_at, paused_at,
                                   now, self._legal())

    def latest(self, appointment_at: datetime) -> datetime:
        """The latest lawful instant for the apology letter."""
        return late_path.latest_letter(self.calendar(), self.regime, self.legal_time,
                                       appointment_at,
                                       self.received_at.astimezone(VIETNAM_TZ))

    def span(self, step: StepInfo | None) -> int:
        """The working time a step's allotment gives it, in the desk's calendar."""
        if step is None:
            return 0
        return allotment_span(self.calendar(), step.allotment, self.legal_time)

    def deadline(self, step: StepInfo, agency: str, ready: datetime,
                 appointment_at: datetime | None) -> datetime | None:
        """The deadline of a task of ``step`` that opened at ``ready``."""
        if not step.allotment:
            return None
        if step.sla is not None and appointment_at is not None:
            # The late path: its steps end by the latest lawful instant for the letter.
            rest = self.span(self.late_path_after(step.id)[1]) \
                if step.sla == late_path.PROPOSE else 0
            return late_path.late_step_deadline(self.calendar(), ready, self.span(step),
                                                rest, self.latest(appointment_at))
        # A transfer under the cut-off rule: the dossier's cut-off, with the procedure's
        # override (the effective regime).
        cutoff = self.regime.transfer_cutoff if step.allotment == CUTOFF else None
        return step_deadline(self.calendar(agency), ready, step.allotment, self.legal_time,
                             cutoff)

    def timer_due(self, timer: Waiting, now: datetime, appointment_at: datetime | None,
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

    def _timer_due(self, timer: Waiting, now: datetime, appointment_at: datetime | None,
                   paused_at: datetime | None,
                   late_state: Callable[[], late_path.LatePathState]) -> datetime | None:
        try:
            value = literal(timer.expression)
        except ValueError as exc:
            raise ProcessError(f"timer: {exc}", dossier=self.code, element=timer.step.id) \
                from None
        if value is None:
            value = self._evaluated(timer, now, appointment_at, paused_at, late_state)
            if value is None:
                return None
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

    def _evaluated(self, timer: Waiting, now: datetime, appointment_at: datetime | None,
                   paused_at: datetime | None,
                   late_state: Callable[[], late_path.LatePathState]) -> Any:
        """A timer expression's value, with the service-level instants in scope."""
        scope = dict(timer.data)
        if uses_sla(timer.expression):
            live = appointment_at.astimezone(VIETNAM_TZ) if appointment_at is not None \
                else None
            calendar = self.calendar()

            def warning() -> datetime:
                propose, letter = self.late_path_after(timer.step.id)
                assert live is not None
                return late_path.warning_at(calendar, self.latest(live),
                                            self.span(propose) + self.span(letter), now)

            scope.update(late_path.timer_instants(
                late_state(), self.regime, live, paused_at is not None,
                latest=lambda: self.latest(live) if live else now, warning=warning))
        try:
            result = self.evaluate(timer.expression, scope)
            return None if result is None else read_value(result)
        except ProcessError as exc:
            raise ProcessError(exc.reason, dossier=self.code, element=timer.step.id) \
                from None
        except ValueError as exc:
            raise ProcessError(f"timer: {exc}", dossier=self.code, element=timer.step.id) \
                from None


def decide(case: Case, happening: Happening, now: datetime, *, actor: str | None,
           late: Late | None = None) -> Progress:
    """What a start, a completion, a message or a timer changed: new tasks and timers,
    statuses, handovers, the service-level clock, the late path, the end.

    :class:`RuleViolation` when the change breaks a one-stop rule: an agency asks the
    applicant for a supplement a second time during resolution."""
    progress = Progress(case.status, case.appointment_at, case.paused_at)
    completed = happening.completed
    if late is not None:
        progress.late_touched = True
        progress.events.extend(late.events)
        if late.reappointment is not None:
            progress.appointment_at, letter = late.reappointment
            progress.events.append(Entry(now, letter, completed.step if completed else None,
                                         actor, completed.agency if completed else None))
    for step in happening.passed:
        _set_status(case, progress, step, now, actor, completed)
    open_ids = {task_id for task_id, _step in happening.open_tasks}
    known = set(happening.was_open)
    if completed is not None:
        known.discard(completed.task_id)
    progress.gone = sorted(known - open_ids)
    progress.stayed = sorted(known & open_ids)
    for gone in progress.gone:
        left = happening.step_of(gone)
        if left is not None and left.sla:
            progress.late_touched = True
        progress.events.append(Entry(
            now, TaskCancelled("resolution_ended" if gone in happening.withdrawn else None),
            left.id if left else None, actor, case.agency_for(left) if left else None))
    for task_id, step in happening.open_tasks:
        if task_id in known:
            continue
        if step.sla:
            progress.late_touched = True
        agency = case.agency_for(step)
        role = case.role_for(step)
        due = case.deadline(step, agency, now, progress.appointment_at)
        progress.new_tasks.append(NewTask(task_id, step.id, role, agency, now, due))
        progress.events.append(Entry(now, TaskReady(due), step.id, None, agency))
        if completed is not None:
            progress.events.append(Entry(now, HandedOver(step.id, agency, role),
                                         completed.step, actor, completed.agency))
        _set_status(case, progress, step, now, actor, completed)
    _timers(case, happening, progress, now)
    progress.finished = happening.finished
    if progress.finished:
        progress.events.append(Entry(now, Finished(int(progress.status)), None, actor))
    if progress.supplement_by is not None and any(
            e.kind is EventKind.SUPPLEMENT_REQUESTED and e.agency == progress.supplement_by
            for e in case.events()):
        raise RuleViolation(f"dossier {case.code}: {progress.supplement_by} has already "
                            f"asked the applicant for a supplement; an agency may ask "
                            f"once during resolution")
    return progress


def _set_status(case: Case, progress: Progress, step: StepInfo, now: datetime,
                actor: str | None, completed: Done | None) -> None:
    """The status a step sets, with what comes with it: the appointment when the dossier
    is accepted as complete, the clock stopping for a supplement and resuming after."""
    status = progress.status
    if step.status is None or step.status == status:
        return
    appointed = None
    if step.status == DossierStatus.RECEIVED and progress.appointment_at is None:
        # Accepted as complete: the receipt and appointment slip is issued now.
        progress.appointment_at = appointed = case.appoint(now)
    progress.events.append(Entry(now, StatusChanged(int(status), step.status, appointed),
                                 step.id, actor))
    if step.status == DossierStatus.SUPPLEMENT_REQUESTED \
            and progress.appointment_at is not None and progress.paused_at is None:
        # Asked for a supplement during resolution: the clock stops while the applicant
        # completes the dossier.
        progress.paused_at = now
        progress.supplement_by = completed.agency if completed is not None else None
        progress.events.append(Entry(
            now, SupplementRequested(True, case.regime.supplement_clock,
                                     progress.appointment_at),
            step.id, actor, progress.supplement_by))
    elif status == DossierStatus.SUPPLEMENT_REQUESTED and progress.paused_at is not None \
            and progress.appointment_at is not None:
        previous = progress.appointment_at
        progress.appointment_at = case.resume(previous, progress.paused_at, now)
        progress.paused_at = None
        progress.events.append(Entry(
            now, AppointmentSet(progress.appointment_at, previous,
                                f"supplement_{case.regime.supplement_clock}"),
            step.id, actor))
    progress.status = DossierStatus(step.status)


def _timers(case: Case, happening: Happening, progress: Progress, now: datetime) -> None:
    """Schedule timers the process started waiting on; move service-level timers when
    the appointment moved, the clock paused or the late path changed; drop timers the
    process left."""
    known = set(happening.was_timers)
    sla_changed = (progress.appointment_at != case.appointment_at
                   or progress.paused_at != case.paused_at or progress.late_touched)
    now_waiting = set(happening.timer_ids)
    progress.gone_timers = sorted(known - now_waiting)
    if not (now_waiting - known) and not (sla_changed and now_waiting):
        return                      # the same timers wait, due when they were
    waiting = happening.timers()
    state: list[late_path.LatePathState] = []

    def late_state() -> late_path.LatePathState:
        if not state:
            state.append(late_path.late_path_state_of(happening.late_steps()))
        return state[0]

    for timer in waiting:
        if timer.id not in known:
            due = case.timer_due(timer, now, progress.appointment_at, progress.paused_at,
                                 late_state)
            progress.new_timers.append((timer.id, timer.step.id, due))
        elif sla_changed and uses_sla(timer.expression):
            due = case.timer_due(timer, now, progress.appointment_at, progress.paused_at,
                                 late_state)
            if due != timer.due:
                progress.rescheduled.append((timer.id, due))


def late_answer(case: Case, step: StepInfo, values: Mapping[str, Any], *, officer: str,
                agency: str) -> Late:
    """Check a late-path step's answer before it completes: the prompt's
    (``propose``: will the dossier be late, why, until when) or the letter's
    (``apology``: the new appointment it sets). ``values`` are the process data with the
    form's fields; ``agency`` the task's.

    Lateness is judged on the service-level clock: while a supplement pauses it, the
    dossier is where it stood when it stopped."""
    history = case.events()
    apologies = sum(1 for e in history if e.kind is EventKind.APPOINTMENT_SET
                    and e.detail.get("reason") == "apology")
    now, appointment_at = case.now, case.appointment_at
    clock_at = case.paused_at or now
    calendar = case.calendar()
    if step.sla == late_path.PROPOSE:
        asks = any(f.name == late_path.WILL_BE_LATE for f in step.form)
        answer = late_path.answer(values, asks=asks, now=now, clock_at=clock_at,
                                  appointment_at=appointment_at, regime=case.regime,
                                  apologies=apologies, calendar=calendar,
                                  dossier=case.code, step=step.id)
        overdue = appointment_at is not None and clock_at > appointment_at
        assessed = DelayAssessed(answer.will_be_late, overdue,
                                 answer.delay_reason if answer.will_be_late else None,
                                 answer.new_appointment if answer.will_be_late else None,
                                 appointment_at if answer.will_be_late else None)
        return Late(events=[Entry(now, assessed, step.id, officer, agency)])
    responsible = next((e.agency for e in reversed(history)
                        if e.kind is EventKind.COMPLETED and e.step is not None
                        and getattr(case.step_named(e.step), "sla", None)
                        == late_path.PROPOSE), None) or case.responsible()
    proposed = next((e.detail for e in reversed(history)
                     if e.kind is EventKind.DELAY_ASSESSED
                     and e.detail.get("will_be_late")), {})
    values = late_path.moved_with_the_appointment(values, proposed, appointment_at, calendar)
    latest = case.latest(appointment_at) if appointment_at is not None else None
    new, letter = late_path.letter(values, now=now, clock_at=clock_at,
                                   appointment_at=appointment_at, latest=latest,
                                   regime=case.regime, apologies=apologies,
                                   calendar=calendar, responsible=responsible,
                                   dossier=case.code, step=step.id)
    return Late(reappointment=(new, letter))


def apology_side(case: Case, clerk: Officer, finished: bool) -> str:
    """The agency on whose behalf ``clerk`` starts a dossier's late path ahead of the
    warning: one of the resolving side's (the dossier's agencies but the desk) where they
    hold a role. :class:`PermissionDenied` for anyone else, :class:`RuleViolation` for a
    finished dossier."""
    resolving = case.agencies() - {case.desk}
    side = sorted(resolving & set(clerk.roles))
    if not side:
        raise PermissionDenied(
            f"officer {clerk.id} cannot start the apology of dossier {case.code}: that is "
            f"for an officer of the resolving side ({', '.join(sorted(resolving))})")
    if finished:
        raise RuleViolation(f"dossier {case.code} has finished; there is nothing to "
                            f"apologise for any more")
    return side[0]


def apology_timer(case: Case, open_steps: Sequence[StepInfo],
                  late_steps: Sequence[tuple[str, str]], timers: Sequence[Waiting]) -> Waiting:
    """The late path's waiting timer to fire ahead of time (the warning, or after a
    ``no``, the prompt at the due instant). :class:`RuleViolation` when the path is open
    already, the regime's re-appointments are used up, or nothing waits (not in
    resolution, or a model without a late path)."""
    open_late = [s.id for s in open_steps if s.sla]
    if open_late:
        raise RuleViolation(f"dossier {case.code}: the late path is already open "
                            f"({', '.join(open_late)})")
    state = late_path.late_path_state_of(late_steps)
    if state.apologies >= case.regime.max_reappointments:
        raise RuleViolation(f"dossier {case.code}: regime {case.regime.code} allows "
                            f"{case.regime.max_reappointments} re-appointment(s) and the "
                            f"dossier has had {state.apologies}")
    waiting = [t for t in timers if case.late_path_after(t.step.id)[0] is not None]
    if not waiting:
        raise RuleViolation(f"dossier {case.code} is not in resolution, or its model has no "
                            f"late path (a timer leading to a step marked "
                            f"onestop:sla=\"propose\")")
    return waiting[0]
