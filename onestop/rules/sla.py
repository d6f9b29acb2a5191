"""Where a dossier and its steps stand against their deadlines, read from its event
log alone: early / on time / late when finished, within time / due soon / overdue while
running, the apology letter's standing, and the agency responsible for a delay. A fold
over events, so the API, the forms and the reports agree."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Mapping, Sequence

from ..calendar import WorkingCalendar
from ..clock import VIETNAM_TZ
from ..duration import Duration, Unit


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
        """Whether the mark judges something done (early, on time or late)."""
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
        """The apology status as reports print it."""
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
    log = _Reading()
    for event in events:
        log.read(event)
    done = log.resolved or log.finished
    desk_calendar = calendars.for_agency(desk)
    if done is not None and log.due is not None:
        mark = Mark.LATE if log.apologies else judge(log.due, done, now, desk_calendar,
                                                     due_soon)
    else:
        # A paused clock stands still: judge at the instant it stopped.
        mark = judge(log.due, None, log.paused_since or now, desk_calendar, due_soon)
    step_marks = tuple(StepSla(mark=judge(s["due_at"], s["finished_at"], now,
                                          calendars.for_agency(s["agency"]), due_soon)
                               if not s["cancelled"] else Mark.NO_DEADLINE, **s)
                       for s in log.steps)
    return SlaReport(code, mark, log.due, log.appointment_at, done,
                     log.paused_since is not None, tuple(log.apologies),
                     tuple(log.supplements), step_marks)


class _Reading:
    """What the event log says so far of a dossier's deadlines, read one event at a
    time."""

    def __init__(self) -> None:
        self.due: datetime | None = None
        self.appointment_at: datetime | None = None
        self.finished: datetime | None = None
        self.resolved: datetime | None = None
        self.paused_since: datetime | None = None
        self.apologies: list[Apology] = []
        self.supplements: list[tuple[datetime, str | None]] = []
        self.steps: list[dict[str, Any]] = []

    def read(self, event: Any) -> None:
        kind = getattr(event.kind, "value", event.kind)
        detail = event.detail or {}
        if kind == "status_changed":
            if "appointment" in detail:
                self.due = self.appointment_at = _parse(detail["appointment"])
            if detail.get("to") == 9 and self.resolved is None:
                self.resolved = event.at
        elif kind == "appointment_set":
            self._appointment(event, detail)
        elif kind == "supplement_requested":
            self.supplements.append((event.at, event.agency))
            if detail.get("paused"):
                self.paused_since = event.at
        elif kind == "task_ready":
            self.steps.append({"step": event.step, "agency": event.agency,
                               "ready_at": event.at,
                               "due_at": _parse(detail["due"]) if detail.get("due") else None,
                               "finished_at": None, "finished_by": None, "cancelled": False})
        elif kind in ("completed", "task_cancelled"):
            for step in self.steps:
                if step["step"] == event.step and step["finished_at"] is None:
                    step["finished_at"] = event.at
                    step["finished_by"] = event.actor
                    step["cancelled"] = kind == "task_cancelled"
                    break
        elif kind == "finished":
            self.finished = event.at

    def _appointment(self, event: Any, detail: Mapping[str, Any]) -> None:
        """A new appointment: the apology letter's (the dossier still counts as late), or
        the clock's after a supplement (the new due instant)."""
        new = _parse(detail["appointment"])
        if detail.get("reason") == "apology":
            latest = _parse(detail["latest"]) if detail.get("latest") else None
            # A letter recorded before "in_time" was kept: in time if before the due.
            in_time = detail.get("in_time")
            if in_time is None:
                in_time = self.appointment_at is None or event.at <= self.appointment_at
            self.apologies.append(Apology(event.at, detail.get("responsible"),
                                          str(detail.get("delay_reason", "")),
                                          self.appointment_at, new, latest, bool(in_time)))
        else:
            self.due = new
            self.paused_since = None
        self.appointment_at = new


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
