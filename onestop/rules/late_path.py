"""The late path — the apology letter and new appointment (Phiếu xin lỗi và hẹn lại ngày
trả kết quả) — decided without I/O.

The law: when a dossier *will* miss its appointment, the agency responsible for the delay
must, at the latest one working day before the due instant (the regime's lead, shorter
for short legal times: :meth:`onestop.sla.Regime.lead_for`), explain the delay to the
desk and send the applicant an apology letter with the reason and a new appointment;
re-appointment at most once (the regime's ``max_reappointments``); the dossier still
counts as late.

A model draws the late path on the activity that resolves the dossier, with three
non-interrupting boundary events:

* a timer at ``apology_warning``: early enough that the explanation (the step marked
  ``onestop:sla="propose"``) and the letter (``onestop:sla="apology"``) both fit, at
  their allotments, before ``apology_due`` — the latest lawful instant (the due instant
  minus the lead), and never before the dossier was received. The prompt asks
  ``will_be_late`` (``yes`` / ``no``): ``no`` closes it, ``yes`` needs ``delay_reason``
  and ``new_appointment`` and the desk then issues the letter;
* a message ``apology_requested``: an officer of the resolving side who knows early
  starts the path at once (``Engine.start_apology``);
* a timer at ``apology_overdue``: the due instant itself, for a dossier that passed it
  with no apology. Once the due instant has passed, ``no`` is no longer an answer.

The engine withdraws any step of the path still open when the activity it is attached to
ends (the resolution finished, or was withdrawn), so the dossier ends normally.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Mapping

from ..calendar import WorkingCalendar
from ..duration import Duration
from ..errors import InvalidInput, RuleViolation
from ..events import AppointmentSet
from ..regimes import Regime
from ..steps import StepInfo
from .deadlines import apology_due, parse_new_appointment

#: The parts a step plays on the late path (``onestop:sla``).
PROPOSE, APOLOGY = "propose", "apology"
#: The prompt's question and the fields of a proposal.
WILL_BE_LATE, DELAY_REASON, NEW_APPOINTMENT = "will_be_late", "delay_reason", "new_appointment"
YES, NO = "yes", "no"
#: Names a timer expression may use for the late path's instants.
LATEST, WARNING, OVERDUE = "apology_due", "apology_warning", "apology_overdue"


def path_after(start: str, successors: Callable[[str], Iterable[str]],
               step_of: Callable[[str], StepInfo | None],
               ) -> tuple[StepInfo | None, StepInfo | None]:
    """The late-path steps a flow node leads to: the nearest step marked
    ``onestop:sla="propose"`` (the prompt) and the nearest marked ``"apology"`` (the
    letter) downstream of ``start`` (itself included), following the flows
    ``successors`` gives within its process; (None, None) for a node that leads to
    neither. The engine walks its loaded model with it and lint the BPMN file's flows,
    so both find the same path."""
    propose = apology = None
    queue, seen = [start], {start}
    while queue:
        node = queue.pop(0)
        step = step_of(node)
        if step is not None and step.sla == PROPOSE and propose is None:
            propose = step
        elif step is not None and step.sla == APOLOGY:
            apology = step
            break
        for target in successors(node):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return propose, apology


def latest_letter(calendar: WorkingCalendar, regime: Regime, legal_time: Duration | None,
                  appointment_at: datetime, received_at: datetime) -> datetime:
    """The latest lawful instant for the apology letter: the lead before the
    appointment, and not before the dossier was received."""
    return max(apology_due(calendar, regime, appointment_at, legal_time), received_at)


def warning_at(calendar: WorkingCalendar, latest: datetime, path: int,
               not_before: datetime) -> datetime:
    """When to ask the responsible agency: ``path`` working microseconds (the
    explanation's and the letter's allotments) before ``latest``; never before
    ``not_before`` (the instant the warning is scheduled)."""
    return max(calendar.from_axis(max(calendar.to_axis(latest) - path, 0)), not_before)


def late_step_deadline(calendar: WorkingCalendar, ready: datetime, own: int, rest: int,
                       latest: datetime) -> datetime:
    """A late-path step's deadline: its allotment (``own`` working microseconds) from
    when it became ready, while it and the steps after it (``rest``) fit before
    ``latest``; when they do not fit, they share the time left before ``latest`` in
    proportion to their allotments, so the letter's deadline is ``latest``; past
    ``latest``, the allotment again."""
    start = calendar.to_axis(ready)
    left = calendar.to_axis(latest) - start
    need = own + rest
    if left <= 0 or left >= need or need <= 0:
        return calendar.from_axis(start + own)
    return calendar.from_axis(start + left * own // need)


@dataclass(frozen=True)
class LatePathState:
    """Where a dossier's late path stands: apologies made, whether the responsible
    agency was already asked since the last one, and whether a step of the path is open."""

    apologies: int = 0
    prompted: bool = False
    open: bool = False


#: Where a late-path step stands in a dossier's process: open now, done, withdrawn.
OPEN, DONE, WITHDRAWN = "open", "done", "withdrawn"


def late_path_state_of(steps: Iterable[tuple[str, str]]) -> LatePathState:
    """The late path's state from the ``(part, where)`` of each of its steps the process
    has reached (``where``: :data:`OPEN`, :data:`DONE` or :data:`WITHDRAWN`): each letter
    done is an apology; the agency was asked since the last one when more prompts were
    reached than letters done (every letter follows a prompt)."""
    apologies = prompts = 0
    is_open = False
    for part, where in steps:
        is_open |= where == OPEN
        if part == APOLOGY and where == DONE:
            apologies += 1
        elif part == PROPOSE:
            prompts += 1
    return LatePathState(apologies, prompts > apologies, is_open)


def timer_instants(state: LatePathState, regime: Regime, appointment_at: datetime | None,
                   paused: bool, latest: Callable[[], datetime],
                   warning: Callable[[], datetime]) -> dict[str, str | None]:
    """The service-level names a timer expression may use, as ISO text; None suspends
    a timer: while the clock is paused, once the re-appointments the regime allows are
    used, and for the warning once the agency was asked (or the path is open), for the
    overdue prompt while the path is open."""
    live = appointment_at is not None and not paused
    more = state.apologies < regime.max_reappointments
    return {
        "appointment": appointment_at.isoformat() if live and appointment_at else None,
        LATEST: latest().isoformat() if live else None,
        WARNING: warning().isoformat()
        if live and more and not state.prompted and not state.open else None,
        OVERDUE: appointment_at.isoformat()
        if live and appointment_at and more and not state.open else None,
    }


@dataclass(frozen=True)
class Answer:
    """The responsible agency's answer to the prompt."""

    will_be_late: bool
    delay_reason: str | None = None
    new_appointment: datetime | None = None


def answer(values: Mapping[str, Any], *, asks: bool, now: datetime, clock_at: datetime,
           appointment_at: datetime | None, regime: Regime, apologies: int,
           calendar: WorkingCalendar, dossier: str, step: str) -> Answer:
    """Check the prompt's answer (``values``: the process data with the form's fields)
    before the step completes. ``asks``: the step's form has the ``will_be_late``
    question (the prompt after the due instant does not). ``clock_at`` is where the
    service-level clock stands (``now``, or the instant a supplement paused it).
    :class:`RuleViolation` or :class:`InvalidInput` naming the dossier and step
    otherwise."""
    if appointment_at is None:
        raise RuleViolation(f"dossier {dossier} has no appointment yet; there is nothing "
                            f"to re-appoint")
    if asks and values.get(WILL_BE_LATE) == NO:
        if clock_at > appointment_at:
            raise RuleViolation(
                f"dossier {dossier}: the appointment {appointment_at.isoformat()} has "
                f"passed, so the dossier is late: step {step} takes {WILL_BE_LATE!r} = "
                f"{YES!r} with {DELAY_REASON!r} and {NEW_APPOINTMENT!r}")
        return Answer(False)
    reason, new = reappointment(values, now=now, appointment_at=appointment_at,
                                regime=regime, apologies=apologies, calendar=calendar,
                                dossier=dossier, step=step)
    return Answer(True, reason, new)


def reappointment(values: Mapping[str, Any], *, now: datetime, appointment_at: datetime,
                  regime: Regime, apologies: int, calendar: WorkingCalendar, dossier: str,
                  step: str) -> tuple[str, datetime]:
    """The delay reason and the new appointment a proposal gives, checked against the
    regime's limit, the current appointment and the present."""
    if apologies >= regime.max_reappointments:
        raise RuleViolation(f"dossier {dossier}: regime {regime.code} allows "
                            f"{regime.max_reappointments} re-appointment(s) and the dossier "
                            f"has had {apologies}")
    missing = [name for name in (DELAY_REASON, NEW_APPOINTMENT)
               if not str(values.get(name) or "").strip()]
    if missing:
        fields = " and ".join(repr(name) for name in missing)
        raise InvalidInput(f"dossier {dossier}: step {step} needs field"
                           f"{'s' if len(missing) > 1 else ''} {fields} when the dossier "
                           f"will be late (the reason, and the new appointment as a date "
                           f"YYYY-MM-DD or an instant)")
    try:
        new = parse_new_appointment(values[NEW_APPOINTMENT], calendar)
    except ValueError as exc:
        raise InvalidInput(f"dossier {dossier}: field {NEW_APPOINTMENT!r}: {exc}") from None
    if new <= appointment_at:
        raise RuleViolation(f"dossier {dossier}: the new appointment {new.isoformat()} "
                            f"must be later than the current one "
                            f"{appointment_at.isoformat()}")
    if new <= now:
        raise RuleViolation(f"dossier {dossier}: the new appointment {new.isoformat()} "
                            f"has already passed")
    return str(values[DELAY_REASON]).strip(), new


def moved_with_the_appointment(values: Mapping[str, Any], proposal: Mapping[str, Any],
                               appointment_at: datetime | None,
                               calendar: WorkingCalendar) -> Mapping[str, Any]:
    """``values`` with the proposed new appointment moved as the appointment moved since
    the proposal (a supplement paused the clock in between): a proposal keeps its
    distance, in working time, from the appointment it was made against."""
    then = proposal.get("appointment")
    if appointment_at is None or not then or not values.get(NEW_APPOINTMENT):
        return values
    try:
        proposed = parse_new_appointment(values[NEW_APPOINTMENT], calendar)
        before = datetime.fromisoformat(then)
    except (ValueError, TypeError):
        return values           # refused with its reason by the checks that follow
    if before == appointment_at:
        return values
    moved = calendar.from_axis(calendar.to_axis(proposed) + calendar.to_axis(appointment_at)
                               - calendar.to_axis(before))
    return {**values, NEW_APPOINTMENT: moved.isoformat()}


def letter(values: Mapping[str, Any], *, now: datetime, clock_at: datetime,
           appointment_at: datetime | None, latest: datetime | None, regime: Regime,
           apologies: int, calendar: WorkingCalendar, responsible: str | None,
           dossier: str, step: str) -> tuple[datetime, AppointmentSet]:
    """The new appointment the desk's letter sets, and the ``appointment_set`` payload:
    the reason, the responsible agency, the regime's form number, the latest lawful
    instant, whether the letter is issued by then (``in_time``) and whether after the
    due instant (``after_due``), both on the service-level clock (``clock_at``: now, or
    the instant a supplement paused it)."""
    if appointment_at is None:
        raise RuleViolation(f"dossier {dossier} has no appointment yet; there is nothing "
                            f"to re-appoint")
    reason, new = reappointment(values, now=now, appointment_at=appointment_at,
                                regime=regime, apologies=apologies, calendar=calendar,
                                dossier=dossier, step=step)
    return new, AppointmentSet(new, appointment_at, "apology", reason, responsible,
                               regime.forms.get("apology"), latest,
                               latest is not None and clock_at <= latest,
                               clock_at > appointment_at)
