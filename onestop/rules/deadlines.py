"""Deadlines in working time, decided without I/O: the appointment at acceptance, its
move after a supplement, step deadlines from allotments (shares of the legal time, the
transfer cut-off rule), the latest instant for an apology letter, and a proposed new
appointment read from a form."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from ..allotment import allotment_share, is_cutoff
from ..calendar import WorkingCalendar
from ..clock import VIETNAM_TZ
from ..duration import Duration, Unit
from ..regimes import Regime


def appointment(calendar: WorkingCalendar, regime: Regime, received: datetime,
                legal_time: Duration) -> datetime:
    """The appointment instant (ngày hẹn trả kết quả) for a dossier received at
    ``received``: the legal time counted in working time from the next session, or from
    the next working day when received after the regime's transfer cut-off."""
    start = calendar.next_working_instant(received)
    local = received.astimezone(VIETNAM_TZ)
    if start.date() == local.date() and local.time() >= regime.transfer_cutoff:
        start = calendar.start_of_next_working_day(local)
    return calendar.add(start, legal_time)


def apology_due(calendar: WorkingCalendar, regime: Regime, appointment_at: datetime,
                legal_time: Duration | None = None) -> datetime:
    """The latest lawful instant for the apology letter: the regime's lead for the
    procedure's legal time (:meth:`Regime.lead_for`) before the appointment."""
    lead = regime.lead_for(legal_time)
    if lead.unit is Unit.WORKING_DAYS:
        return calendar.add_working_days(appointment_at, -lead.value)
    if lead.unit is Unit.WORKING_HOURS:
        return calendar.add_working_hours(appointment_at, -lead.value)
    return appointment_at - timedelta(days=float(lead.value))


def resumed_appointment(calendar: WorkingCalendar, regime: Regime, appointment_at: datetime,
                        paused_at: datetime, resumed_at: datetime,
                        legal_time: Duration) -> datetime:
    """The appointment once the applicant has supplemented: moved on by the working time
    spent waiting (regime clock ``pause``), or the whole legal time counted again from
    the supplement (``restart``)."""
    if regime.supplement_clock == "restart":
        return appointment(calendar, regime, resumed_at, legal_time)
    waited = calendar.to_axis(resumed_at) - calendar.to_axis(paused_at)
    return calendar.from_axis(calendar.to_axis(appointment_at) + max(waited, 0))


def step_deadline(calendar: WorkingCalendar, ready_at: datetime, allotment: str,
                  legal_time: Duration | None, cutoff: time | None = None) -> datetime:
    """A step's deadline: its allotment (``"1.5wd"``, or a share of the procedure's
    legal time such as ``"20%"``) counted from when it became ready; for the allotment
    ``"cutoff"``, :func:`cutoff_deadline` with the dossier's transfer ``cutoff`` (the
    effective regime's, which the caller passes)."""
    if is_cutoff(allotment):
        if cutoff is None:
            raise ValueError("the allotment 'cutoff' needs the regime's transfer cut-off")
        return cutoff_deadline(calendar, ready_at, cutoff)
    if "%" not in allotment:
        return calendar.add(ready_at, Duration.parse(allotment))
    share = Decimal(str(allotment_share(allotment)))
    if legal_time is None or legal_time.unit is Unit.SAME_DAY:
        # Same-day procedures: a share of one working day.
        return calendar.add_working_hours(ready_at, share * calendar.day_length / 3_600_000_000)
    if legal_time.unit is Unit.WORKING_DAYS:
        return calendar.add_working_days(ready_at, legal_time.value * share)
    if legal_time.unit is Unit.WORKING_HOURS:
        return calendar.add_working_hours(ready_at, legal_time.value * share)
    return ready_at + timedelta(days=float(legal_time.value * share))


def allotment_span(calendar: WorkingCalendar, allotment: str | None,
                   legal_time: Duration | None) -> int:
    """The working time an allotment gives a step, in microseconds of ``calendar``'s
    working-time axis (a calendar day counts as a working day; ``cutoff`` and no
    allotment as nothing)."""
    if not allotment or is_cutoff(allotment):
        return 0
    if "%" not in allotment:
        return _span(calendar, Duration.parse(allotment))
    share = Decimal(str(allotment_share(allotment)))
    if legal_time is None or legal_time.unit is Unit.SAME_DAY:
        return int(share * calendar.day_length)
    return int(share * _span(calendar, legal_time))


def _span(calendar: WorkingCalendar, duration: Duration) -> int:
    if duration.unit is Unit.WORKING_HOURS:
        return int(duration.value * 3_600_000_000)
    if duration.unit is Unit.SAME_DAY:
        return calendar.day_length
    return int(duration.value * calendar.day_length)


def cutoff_deadline(calendar: WorkingCalendar, ready_at: datetime, cutoff: time) -> datetime:
    """The deadline of a step under the transfer cut-off rule (allotment ``"cutoff"``):
    paper moves the same working day, or at the start of the next one when it comes
    after the cut-off.

    * ready on a working day before ``cutoff``: the close of office hours that day
      (the end of its last session);
    * ready on a working day at or after ``cutoff`` (the same comparison as the
      appointment's): the end of the first office session of the next working day —
      the morning run (our reading of "the start of the next working day");
    * ready on a day off: the close of the next working day (it counts from there,
      before any cut-off).

    A cut-off later than the close of office hours acts as the close, so a step that
    becomes ready after closing always goes with the next morning run.
    """
    local = ready_at.astimezone(VIETNAM_TZ)
    closing = calendar.sessions[-1][1]
    if calendar.is_working_day(local.date()) and local.time() >= min(cutoff, closing):
        morning = calendar.start_of_next_working_day(local)
        return datetime.combine(morning.date(), calendar.sessions[0][1], VIETNAM_TZ)
    return calendar.end_of_working_day(local)


def parse_new_appointment(value: Any, calendar: WorkingCalendar) -> datetime:
    """A proposed new appointment: an ISO date (meaning the end of that working day) or
    an instant with its UTC offset. ValueError when it is neither."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                if not calendar.is_working_day(day):
                    raise ValueError(f"{day} is not a working day")
                return calendar.end_of_working_day(
                    datetime.combine(day, calendar.sessions[0][0], VIETNAM_TZ))
            instant = datetime.fromisoformat(text)
            if instant.tzinfo is not None:
                instant.astimezone(VIETNAM_TZ)
        except (ValueError, OverflowError) as exc:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or an instant: {exc}") \
                from None
        if instant.tzinfo is None:
            raise ValueError(f"{value!r} needs a UTC offset, e.g. {text}+07:00")
        return instant.astimezone(VIETNAM_TZ)
    raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or an instant")
