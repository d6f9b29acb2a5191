"""Service-level rules: legal regimes bound to the receipt date, and appointments.

A regime (ND61-2018, ND118-2025, ...) is data in ``regimes.json`` beside the catalogue:
the dates it covers, the transfer cut-off, whether a supplement request pauses or
restarts the clock, how many re-appointments are allowed, how early an apology is owed,
and its form numbers. A new decree is a data change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, Mapping, Sequence

from .calendar import WorkingCalendar
from .catalog import Catalog, read_data_file
from .clock import VIETNAM_TZ
from .bpmn.extensions import allotment_share, is_cutoff
from .duration import Duration, Unit
from .errors import CatalogError, InvalidInput

SUPPLEMENT_CLOCKS = ("pause", "restart")
#: Regime fields a catalogue entry may override per procedure (``regime_overrides``).
OVERRIDABLE_FIELDS = ("transfer_cutoff", "supplement_clock", "max_reappointments",
                      "apology_lead", "apology_role")
#: Who gives the explanation when a dossier will be late, unless a regime says otherwise:
#: the head of the responsible agency.
DEFAULT_APOLOGY_ROLE = "leader"
_ROLE_NAME = re.compile(r"[a-z][a-z0-9_]*")
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


@dataclass(frozen=True)
class Regime:
    """The rules that apply to dossiers received within its dates."""

    code: str
    name: str
    received_from: date | None
    received_until: date | None
    transfer_cutoff: time = time(15, 0)
    supplement_clock: str = "pause"
    max_reappointments: int = 1
    apology_lead: Duration = field(default_factory=lambda: Duration.parse("1wd"))
    forms: Mapping[str, str] = field(default_factory=dict)
    #: Leads for short legal times, ``((legal time up to, lead), ...)`` in ascending
    #: order: the 1-working-day lead cannot apply as written to a same-day procedure.
    apology_lead_short: tuple[tuple[Duration, Duration], ...] = ()
    #: The role that explains a delay in the responsible agency (its head).
    apology_role: str = DEFAULT_APOLOGY_ROLE

    def covers(self, day: date) -> bool:
        return ((self.received_from is None or self.received_from <= day)
                and (self.received_until is None or day <= self.received_until))

    def lead_for(self, legal_time: Duration | None) -> Duration:
        """How long before the due instant the apology letter must be issued, at the
        latest, for a procedure of ``legal_time``: the first short-time rule whose bound
        the legal time does not exceed (compared in nominal working hours), else
        ``apology_lead``."""
        if legal_time is not None:
            hours = legal_time.nominal_hours()
            for bound, lead in self.apology_lead_short:
                if hours <= bound.nominal_hours():
                    return lead
        return self.apology_lead


class Regimes:
    """Regimes in force, looked up by receipt date."""

    def __init__(self, regimes: Sequence[Regime], source: str | None = None) -> None:
        self.all = tuple(regimes)
        self.source = source

    def get(self, code: str) -> Regime:
        """The regime with this code."""
        for regime in self.all:
            if regime.code == code:
                return regime
        raise InvalidInput(f"no legal regime {code!r}"
                           + (f" in {self.source}" if self.source else ""))

    def at(self, received: datetime) -> Regime:
        """The regime for a dossier received at ``received`` (Vietnam's date)."""
        day = received.astimezone(VIETNAM_TZ).date()
        for regime in self.all:
            if regime.covers(day):
                return regime
        raise InvalidInput(f"no legal regime covers dossiers received on {day}"
                           + (f" (see {self.source})" if self.source else ""))


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


def load_regimes(path: str | Path) -> Regimes:
    """Read and validate ``regimes.json``; errors name the file, regime and field."""
    name = str(path)
    data = read_data_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("regimes"), list):
        raise CatalogError("must be an object with a 'regimes' list", file=name)
    regimes = [_regime(raw, index, name) for index, raw in enumerate(data["regimes"])]
    ordered = sorted(regimes, key=lambda r: r.received_from or date.min)
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if earlier.received_until is None or later.received_from is None \
                or earlier.received_until >= later.received_from:
            raise CatalogError(f"overlaps regime {later.code}", file=name,
                               entry=earlier.code, field="received_until")
    return Regimes(ordered, name)


def _regime(raw: Any, index: int, name: str) -> Regime:
    entry = f"regimes[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("code"), str):
        raise CatalogError("must be an object with a 'code'", file=name, entry=entry)
    entry = raw["code"]
    allowed = {"code", "name", "received_from", "received_until", "transfer_cutoff",
               "supplement_clock", "max_reappointments", "apology_lead", "apology_lead_short",
               "apology_role", "forms", "verify"}
    for key in raw:
        if key not in allowed:
            raise CatalogError(f"unknown key {key!r}", file=name, entry=entry, field=key)

    def day(key: str) -> date | None:
        value = raw.get(key)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            raise CatalogError(f"must be YYYY-MM-DD or null; got {value!r}", file=name,
                               entry=entry, field=key) from None

    rules: dict[str, Any] = {}
    for key, default in _RULE_DEFAULTS.items():
        try:
            rules[key] = parse_regime_field(key, raw.get(key, default))
        except ValueError as exc:
            raise CatalogError(str(exc), file=name, entry=entry, field=key) from None
    forms = raw.get("forms", {})
    if not isinstance(forms, dict) or not all(isinstance(v, str) for v in forms.values()):
        raise CatalogError("must map form names to numbers", file=name, entry=entry,
                           field="forms")
    short = _short_leads(raw.get("apology_lead_short", []), name, entry)
    return Regime(code=entry, name=str(raw.get("name", entry)),
                  received_from=day("received_from"), received_until=day("received_until"),
                  forms=dict(forms), apology_lead_short=short, **rules)


def _short_leads(value: Any, name: str, entry: str) -> tuple[tuple[Duration, Duration], ...]:
    """``[{"legal_time_up_to": "1wd", "lead": "2wh"}, ...]``, bounds strictly rising."""
    where = "apology_lead_short"
    if not isinstance(value, list):
        raise CatalogError('must be a list of {"legal_time_up_to": ..., "lead": ...}',
                           file=name, entry=entry, field=where)
    rules: list[tuple[Duration, Duration]] = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(item, dict) or set(item) != {"legal_time_up_to", "lead"}:
            raise CatalogError('must be {"legal_time_up_to": "1wd", "lead": "2wh"}',
                               file=name, entry=entry, field=at)
        try:
            bound = Duration.parse(item["legal_time_up_to"])
        except ValueError as exc:
            raise CatalogError(str(exc), file=name, entry=entry,
                               field=f"{at}.legal_time_up_to") from None
        try:
            lead = parse_regime_field("apology_lead", item["lead"])
        except ValueError as exc:
            raise CatalogError(str(exc), file=name, entry=entry, field=f"{at}.lead") from None
        if rules and bound.nominal_hours() <= rules[-1][0].nominal_hours():
            raise CatalogError("bounds must rise: list the shortest legal time first",
                               file=name, entry=entry, field=f"{at}.legal_time_up_to")
        rules.append((bound, lead))
    return tuple(rules)


_RULE_DEFAULTS = {"transfer_cutoff": "15:00", "supplement_clock": "pause",
                  "max_reappointments": 1, "apology_lead": "1wd",
                  "apology_role": DEFAULT_APOLOGY_ROLE}


def parse_regime_field(key: str, value: Any) -> Any:
    """Validate one regime rule as ``regimes.json`` or a catalogue's ``regime_overrides``
    states it, and return it typed: ``transfer_cutoff`` "HH:MM" (24-hour) as a
    :class:`~datetime.time`, ``supplement_clock`` "pause" or "restart",
    ``max_reappointments`` a whole number >= 0, ``apology_lead`` a duration in working
    days, working hours or calendar days such as "1wd" as a
    :class:`~onestop.duration.Duration`, ``apology_role`` a role name such as "leader".
    ValueError saying what is wrong otherwise (the caller adds file, entry and field)."""
    if key == "transfer_cutoff":
        if not isinstance(value, str) or not _HH_MM.fullmatch(value):
            raise ValueError(f"must be a 24-hour time HH:MM such as '15:00'; got {value!r}")
        return time.fromisoformat(value)
    if key == "supplement_clock":
        if not isinstance(value, str) or value not in SUPPLEMENT_CLOCKS:
            raise ValueError(f"must be one of {', '.join(SUPPLEMENT_CLOCKS)}; got {value!r}")
        return value
    if key == "max_reappointments":
        # JSON Schema counts 2.0 as an integer; so do we. true/false are not numbers.
        whole = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not whole or value < 0:
            raise ValueError(f"must be a whole number >= 0; got {value!r}")
        return int(value)
    if key == "apology_lead":
        lead = Duration.parse(value)
        if lead.unit is Unit.SAME_DAY:
            raise ValueError("must be a duration such as '1wd' or '2wh', not 'same_day'")
        return lead
    if key == "apology_role":
        if not isinstance(value, str) or not _ROLE_NAME.fullmatch(value):
            raise ValueError(f"must be one lower-case role name such as 'leader'; "
                             f"got {value!r}")
        return value
    raise ValueError(f"not a regime rule that can be set here (one of "
                     f"{', '.join(OVERRIDABLE_FIELDS)})")


def effective_regime(regime: Regime, overrides: Mapping[str, Mapping[str, Any]]) -> Regime:
    """``regime`` as it applies to one procedure: its ``"*"`` overrides, then those for
    ``regime.code``, each a mapping of already parsed values (what
    :attr:`~onestop.catalog.Procedure.regime_overrides` holds). The code is unchanged."""
    changes: dict[str, Any] = {}
    for key in ("*", regime.code):
        changes.update(overrides.get(key) or {})
    if "apology_lead" in changes:
        # A procedure that states its own lead has it whatever its legal time.
        changes["apology_lead_short"] = ()
    return replace(regime, **changes) if changes else regime


def check_regime_overrides(catalog: Catalog, regimes: Regimes) -> None:
    """Refuse ``regime_overrides`` naming a regime ``regimes`` does not define (the
    catalogue alone cannot know them): :class:`CatalogError` with the procedure entry and
    field ``regime_overrides.<CODE>``."""
    known = {regime.code for regime in regimes.all}
    for index, procedure in enumerate(catalog.procedures.values()):
        for code in procedure.regime_overrides:
            if code != "*" and code not in known:
                raise CatalogError(
                    f"no legal regime {code!r} (known: {', '.join(sorted(known)) or 'none'}"
                    + (f", from {regimes.source}" if regimes.source else "") + ")",
                    file=catalog.source, entry=f"procedures[{index}] ({procedure.code})",
                    field=f"regime_overrides.{code}")


# -- deadlines while a dossier runs -------------------------------------------------
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


# -- statuses from the event log ------------------------------------------------------
class Mark(str, Enum):
    """Where a dossier or a step stands against its deadline."""

    EARLY = "early"
    ON_TIME = "on_time"
    LATE = "late"
    WITHIN_TIME = "within_time"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    NO_DEADLINE = "no_deadline"

    @property
    def label_vi(self) -> str:
        """The mark as reports print it."""
        return _MARK_LABELS_VI[self]

    @property
    def finished(self) -> bool:
        return self in (Mark.EARLY, Mark.ON_TIME, Mark.LATE)


_MARK_LABELS_VI = {
    Mark.EARLY: "Trước hạn", Mark.ON_TIME: "Đúng hạn", Mark.LATE: "Quá hạn",
    Mark.WITHIN_TIME: "Trong hạn", Mark.DUE_SOON: "Sắp đến hạn",
    Mark.OVERDUE: "Quá hạn (đang xử lý)", Mark.NO_DEADLINE: "Không tính hạn",
}


@dataclass(frozen=True)
class StepSla:
    """One step instance: when it was handed in, its deadline, when it was done."""

    step: str
    agency: str | None
    ready_at: datetime
    due_at: datetime | None
    finished_at: datetime | None
    finished_by: str | None
    cancelled: bool
    mark: Mark


@dataclass(frozen=True)
class Apology:
    """An apology letter and new appointment (Phiếu xin lỗi và hẹn lại ngày trả kết quả).

    ``latest`` is the latest lawful instant for it (the due instant minus the regime's
    lead); ``in_time`` whether it was issued by then."""

    issued_at: datetime
    responsible_agency: str | None
    reason: str
    previous_appointment: datetime | None
    new_appointment: datetime
    latest: datetime | None = None
    in_time: bool = True


class ApologyStatus(str, Enum):
    """A dossier's apology letter, as the plans count it (100% of late dossiers with an
    apology issued in time)."""

    NOT_NEEDED = "not_needed"
    IN_TIME = "in_time"
    LATE = "late"
    MISSING = "missing"

    @property
    def label_vi(self) -> str:
        return _APOLOGY_LABELS_VI[self]


_APOLOGY_LABELS_VI = {
    ApologyStatus.NOT_NEEDED: "Không phải xin lỗi",
    ApologyStatus.IN_TIME: "Đã xin lỗi đúng hạn",
    ApologyStatus.LATE: "Xin lỗi muộn",
    ApologyStatus.MISSING: "Quá hạn, chưa xin lỗi",
}


@dataclass(frozen=True)
class SlaReport:
    """A dossier's standing against its deadlines, read from its event log.

    ``due_at`` is the legal due instant (moved only by supplement pauses or restarts);
    ``appointment_at`` is the appointment the applicant holds now (a new one after an
    apology). A dossier that needed an apology counts as late however it ends."""

    dossier_code: str
    mark: Mark
    due_at: datetime | None
    appointment_at: datetime | None
    finished_at: datetime | None
    paused: bool
    apologies: tuple[Apology, ...]
    supplements: tuple[tuple[datetime, str | None], ...]
    steps: tuple[StepSla, ...]

    def responsible_agency(self, now: datetime) -> str | None:
        """The agency whose steps ran furthest past their deadlines by ``now`` (None:
        nobody's)."""
        return responsible_agency(self.steps, now)

    @property
    def apology_status(self) -> ApologyStatus:
        """Late and apologised in time, late and apologised late, late (or overdue) with
        no apology, or no apology needed."""
        if self.apologies:
            return ApologyStatus.IN_TIME if self.apologies[0].in_time else ApologyStatus.LATE
        if self.mark in (Mark.LATE, Mark.OVERDUE):
            return ApologyStatus.MISSING
        return ApologyStatus.NOT_NEEDED


def judge(due: datetime | None, finished: datetime | None, now: datetime,
          calendar: WorkingCalendar, due_soon: Duration) -> Mark:
    """The mark of something due at ``due`` that finished at ``finished`` (or not yet)."""
    if due is None:
        return Mark.NO_DEADLINE
    if finished is not None:
        if finished > due:
            return Mark.LATE
        if finished.astimezone(VIETNAM_TZ).date() < due.astimezone(VIETNAM_TZ).date():
            return Mark.EARLY
        return Mark.ON_TIME
    if now > due:
        return Mark.OVERDUE
    left = calendar.elapsed(now, due).microseconds
    if due_soon.unit is Unit.WORKING_HOURS:
        threshold = int(due_soon.value * 3_600_000_000)
    elif due_soon.unit is Unit.CALENDAR_DAYS:
        return Mark.DUE_SOON if due - now <= timedelta(days=float(due_soon.value)) \
            else Mark.WITHIN_TIME
    else:
        threshold = int(due_soon.value * calendar.day_length)
    return Mark.DUE_SOON if left <= threshold else Mark.WITHIN_TIME


def assess(code: str, events: Sequence[Any], now: datetime, calendars: Any, desk: str,
           due_soon: Duration) -> SlaReport:
    """Statuses of a dossier and its steps from its event log (:class:`~onestop.Event`
    entries, oldest first). ``calendars`` gives each agency's working calendar."""
    due = appointment_at = finished = resolved = paused_since = None
    apologies: list[Apology] = []
    supplements: list[tuple[datetime, str | None]] = []
    steps: list[dict[str, Any]] = []
    for event in events:
        kind = getattr(event.kind, "value", event.kind)
        detail = event.detail or {}
        if kind == "status_changed":
            if "appointment" in detail:
                due = appointment_at = _parse(detail["appointment"])
            if detail.get("to") == 9 and resolved is None:
                resolved = event.at
        elif kind == "appointment_set":
            new = _parse(detail["appointment"])
            if detail.get("reason") == "apology":
                latest = _parse(detail["latest"]) if detail.get("latest") else None
                # A letter recorded before "in_time" was kept: in time if before the due.
                in_time = detail.get("in_time")
                if in_time is None:
                    in_time = appointment_at is None or event.at <= appointment_at
                apologies.append(Apology(event.at, detail.get("responsible"),
                                         str(detail.get("delay_reason", "")),
                                         appointment_at, new, latest, bool(in_time)))
            else:
                due = new
                paused_since = None
            appointment_at = new
        elif kind == "supplement_requested":
            supplements.append((event.at, event.agency))
            if detail.get("paused"):
                paused_since = event.at
        elif kind == "task_ready":
            steps.append({"step": event.step, "agency": event.agency, "ready_at": event.at,
                          "due_at": _parse(detail["due"]) if detail.get("due") else None,
                          "finished_at": None, "finished_by": None, "cancelled": False})
        elif kind in ("completed", "task_cancelled"):
            for step in steps:
                if step["step"] == event.step and step["finished_at"] is None:
                    step["finished_at"] = event.at
                    step["finished_by"] = event.actor
                    step["cancelled"] = kind == "task_cancelled"
                    break
        elif kind == "finished":
            finished = event.at
    done = resolved or finished
    desk_calendar = calendars.for_agency(desk)
    if done is not None and due is not None:
        mark = Mark.LATE if apologies else judge(due, done, now, desk_calendar, due_soon)
    else:
        # A paused clock stands still: judge at the instant it stopped.
        mark = judge(due, None, paused_since or now, desk_calendar, due_soon)
    step_marks = tuple(StepSla(mark=judge(s["due_at"], s["finished_at"], now,
                                          calendars.for_agency(s["agency"]), due_soon)
                               if not s["cancelled"] else Mark.NO_DEADLINE, **s)
                       for s in steps)
    return SlaReport(code, mark, due, appointment_at, done, paused_since is not None,
                     tuple(apologies), tuple(supplements), step_marks)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(VIETNAM_TZ)


def responsible_agency(steps: Sequence[StepSla], now: datetime | None) -> str | None:
    """The agency whose steps ran furthest past their deadlines (None when none did)."""
    overrun: dict[str, float] = {}
    for step in steps:
        if step.due_at is None or step.agency is None or step.cancelled:
            continue
        end = step.finished_at or now
        if end is not None and end > step.due_at:
            overrun[step.agency] = overrun.get(step.agency, 0.0) + \
                (end - step.due_at).total_seconds()
    if not overrun:
        return None
    return max(overrun, key=lambda agency: overrun[agency])
