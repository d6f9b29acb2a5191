"""What reports count of a dossier, folded from its event log.

Reports over a year of dossiers are aggregates in SQL, not a walk over every dossier's
log. So each dossier keeps a few facts beside its row, kept current by the command that
writes the events they come from: the legal due instant, when it was resolved and how
(early, on time, late), how long it took in working days with supplement pauses left
out, its apology letter's standing, and what it did that the service-quality index
counts (digitized, data re-used, paid online, result issued electronically, rated). They
are a projection of the log and nothing else: :func:`fold` over a dossier's events from
the start gives them, and the engine recomputes them so for a dossier whose facts were
written by an older release (:data:`FACTS_VERSION`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Iterable

from ..calendar import WorkingCalendar
from ..duration import Duration
from ..events import (
    AppointmentSet,
    DataReused,
    Digitized,
    Finished,
    Paid,
    Rated,
    Received,
    ResultIssued,
    StatusChanged,
    SupplementRequested,
)
from .sla import Mark, judge

#: The version of the fold: a dossier whose facts were written under an earlier one is
#: folded again from its log when an engine opens the store.
FACTS_VERSION = 1

# Bits of ``flags``.
#: Components handed in on paper had to be digitized.
NEEDS_DIGITIZATION = 1
#: Every component that had to be digitized was.
DIGITIZED = 2
#: Data was taken from the state's databases instead of asked for.
REUSED = 4
PAID_ONLINE = 8
PAID_AT_DESK = 16
ELECTRONIC_RESULT = 32
PAPER_RESULT = 64

#: ``mark`` of a resolved dossier.
MARKS = {Mark.EARLY: 1, Mark.ON_TIME: 2, Mark.LATE: 3}
#: ``apology``: none issued, the first one in time, the first one late.
NO_APOLOGY, APOLOGY_IN_TIME, APOLOGY_LATE = 0, 1, 2
#: Satisfaction levels the portal asks for, best first, and their codes.
RATING_LEVELS = {"very_satisfied": 1, "satisfied": 2, "dissatisfied": 3}
#: Status codes that mean the dossier was resolved (9) or its result returned (10).
RESOLVED_STATUSES = (9, 10)
_SCALE = 1000                 # ``worked`` and ``pause_work`` are in 1/1000 working days
_DUE_SOON = Duration.parse("1wd")


@dataclass(frozen=True)
class Facts:
    """A dossier's facts as the store keeps them (see the module's text).

    ``worked`` and ``pause_work`` are thousandths of a working day (on the desk's
    calendar): receipt to resolution without the supplement pauses, and the pauses so
    far. ``mark`` is 1 early, 2 on time, 3 late (:data:`MARKS`); ``rating`` 1 to 3
    (:data:`RATING_LEVELS`); ``applicant_id`` the applicant's identity number."""

    due_at: datetime | None = None
    resolved_at: datetime | None = None
    mark: int | None = None
    worked: int | None = None
    pause_work: int = 0
    apology: int = NO_APOLOGY
    flags: int = 0
    rating: int | None = None
    applicant_id: str | None = None

    def columns(self) -> dict[str, Any]:
        """The facts as the store's columns (with the fold's version)."""
        return {"due_at": self.due_at, "resolved_at": self.resolved_at, "mark": self.mark,
                "worked": self.worked, "pause_work": self.pause_work,
                "apology": self.apology, "flags": self.flags, "rating": self.rating,
                "applicant_id": self.applicant_id, "facts_version": FACTS_VERSION}


#: The facts' column names.
COLUMNS = tuple(Facts().columns())


def stored(row: Any) -> Facts:
    """The facts a stored dossier row holds."""
    return Facts(due_at=row.due_at, resolved_at=row.resolved_at, mark=row.mark,
                 worked=row.worked, pause_work=row.pause_work or 0,
                 apology=row.apology or 0, flags=row.flags or 0, rating=row.rating,
                 applicant_id=row.applicant_id)


def identity_number(applicant: Any) -> str | None:
    """The applicant's identity number (citizen ID, passport or tax code), as searched:
    ``id_number`` without spaces or dots, upper case; None when not given."""
    if not hasattr(applicant, "get"):
        return None
    value = applicant.get("id_number")
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return None
    text = "".join(ch for ch in str(value) if ch not in " .-").upper()
    return text[:40] or None


class Fold:
    """The facts of one dossier, read one log entry at a time (anything with ``at``
    and a typed ``payload``: the engine's entries or :class:`~onestop.Event`).

    Start from :class:`Facts` ``()`` with the whole log, or from the stored facts with a
    command's new entries; ``paused_since`` is when the clock stopped, if it is stopped
    (the dossier's ``paused_at``). What components were digitized is known only when
    the whole log is read, so only :func:`fold` can decide the ``DIGITIZED`` bit."""

    def __init__(self, facts: Facts, received_at: datetime, calendar: WorkingCalendar,
                 paused_since: datetime | None = None) -> None:
        self.facts = facts
        self.received_at = received_at
        self.calendar = calendar
        self.paused_since = paused_since
        self.to_digitize: frozenset[str] | None = None
        self.digitized: set[str] = set()

    def read(self, entries: Iterable[Any]) -> Facts:
        """Read ``entries`` (oldest first); the facts after them."""
        for entry in entries:
            self._read(entry.at, entry.payload)
        return self.facts

    def _read(self, at: datetime, payload: Any) -> None:
        facts = self.facts
        if isinstance(payload, StatusChanged):
            if payload.appointment is not None:           # accepted: the due instant
                facts = replace(facts, due_at=payload.appointment)
            self.facts = facts
            if payload.to_status in RESOLVED_STATUSES and facts.resolved_at is None:
                self._resolve(at)
        elif isinstance(payload, AppointmentSet):
            self._appointment(at, payload)
        elif isinstance(payload, SupplementRequested):
            if payload.paused:
                self.paused_since = at
        elif isinstance(payload, Finished):
            if payload.status in RESOLVED_STATUSES and facts.resolved_at is None:
                self._resolve(at)
        else:
            self._record(payload)

    def _record(self, payload: Any) -> None:
        """The records the service-quality index counts."""
        facts = self.facts
        if isinstance(payload, Received):
            flags = facts.flags
            if payload.to_digitize:
                flags |= NEEDS_DIGITIZATION
            if payload.held:
                flags |= REUSED
            self.to_digitize = frozenset(payload.to_digitize or ())
            self.facts = replace(facts, flags=flags,
                                 applicant_id=identity_number(payload.applicant))
            self._check_digitized()
        elif isinstance(payload, Digitized):
            self.digitized.update(payload.documents)
            self._check_digitized()
        elif isinstance(payload, DataReused):
            self.facts = replace(facts, flags=facts.flags | REUSED)
        elif isinstance(payload, Paid):
            bit = PAID_ONLINE if payload.online else PAID_AT_DESK
            self.facts = replace(facts, flags=facts.flags | bit)
        elif isinstance(payload, ResultIssued):
            flags = facts.flags | (ELECTRONIC_RESULT if payload.electronic else 0) \
                | (PAPER_RESULT if payload.paper else 0)
            self.facts = replace(facts, flags=flags)
        elif isinstance(payload, Rated) and payload.feedback is None:
            self.facts = replace(facts, rating=RATING_LEVELS.get(payload.level))

    def _check_digitized(self) -> None:
        facts = self.facts
        if self.to_digitize and self.to_digitize <= self.digitized:
            self.facts = replace(facts, flags=facts.flags | DIGITIZED)

    def _appointment(self, at: datetime, payload: AppointmentSet) -> None:
        facts = self.facts
        if payload.reason == "apology":
            if facts.apology == NO_APOLOGY:
                in_time = payload.in_time is not False
                self.facts = replace(facts, apology=APOLOGY_IN_TIME if in_time
                                     else APOLOGY_LATE)
            return
        # The clock resumed after a supplement: a new due instant, the pause left out.
        pause = facts.pause_work
        if self.paused_since is not None:
            pause += self._work(self.paused_since, at)
            self.paused_since = None
        self.facts = replace(facts, due_at=payload.appointment, pause_work=pause)

    def _resolve(self, at: datetime) -> None:
        facts = self.facts
        if facts.apology != NO_APOLOGY:
            mark: int | None = MARKS[Mark.LATE]
        elif facts.due_at is None:
            mark = None
        else:
            mark = MARKS[judge(facts.due_at, at, at, self.calendar, _DUE_SOON)]
        worked = max(0, self._work(self.received_at, at) - facts.pause_work)
        self.facts = replace(facts, resolved_at=at, mark=mark, worked=worked)

    def _work(self, start: datetime, end: datetime) -> int:
        if end <= start:
            return 0
        return self.calendar.elapsed(start, end).microseconds * _SCALE \
            // self.calendar.day_length


def fold(events: Iterable[Any], received_at: datetime, calendar: WorkingCalendar) -> Facts:
    """A dossier's facts from its whole log, oldest first."""
    return Fold(Facts(), received_at, calendar).read(events)


def working_days(thousandths: float | int | None) -> float | None:
    """``worked`` (or an average of it) in working days."""
    return None if thousandths is None else float(thousandths) / _SCALE
