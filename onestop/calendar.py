"""Working time: Vietnam's working days and an agency's office sessions.

Working days come from ``holidays.Vietnam`` (public holidays, the lunar Tết block,
announced days off, and the make-up Saturdays in ``weekend_workdays``), with per-agency
overrides layered on top (local closures, newly announced swaps). Office hours are
sessions, 07:30–11:30 and 13:00–17:00 by default.

All arithmetic runs on a *working-time axis*: an instant maps to the working time elapsed
since the first working day of the calendar's range, counting only session time. Adding
N working days adds N session-lengths on that axis, so the result lands at the same
working-clock position N working days later; adding hours adds hours. Mapping an instant
to the axis is one binary search in the precomputed list of working days; mapping back is
one index — O(log n) per query, no day-by-day loop.

Instants outside office hours count from the next session. A due instant that falls
exactly between two working days is given as the end of the earlier one (17:00), as
appointment slips are written.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import holidays

from .clock import VIETNAM_TZ
from .duration import Duration, Unit
from .datafile import read_data_file
from .errors import CatalogError, InvalidInput

DEFAULT_SESSIONS = ((time(7, 30), time(11, 30)), (time(13, 0), time(17, 0)))
#: Years the calendar precomputes; instants outside get a clear error.
DEFAULT_YEARS = range(2015, 2041)
_US = 1_000_000


@dataclass(frozen=True)
class WorkingTime:
    """An amount of working time, as officers say it: whole days and hours."""

    microseconds: int
    day_length: int

    @property
    def days(self) -> int:
        """Whole working days."""
        return self.microseconds // self.day_length

    @property
    def hours(self) -> float:
        """Working hours beyond the whole days."""
        return (self.microseconds % self.day_length) / (3600 * _US)

    @property
    def total_hours(self) -> float:
        """All of it in working hours."""
        return self.microseconds / (3600 * _US)

    @property
    def total_days(self) -> float:
        """All of it in working days (of this calendar's length)."""
        return self.microseconds / self.day_length


def check_sessions(sessions: Sequence[tuple[time, time]]) -> None:
    """Office sessions must exist, be in order within the day and not overlap."""
    previous = time(0, 0)
    if not sessions:
        raise ValueError("a calendar needs at least one office session")
    for start, end in sessions:
        if not previous <= start < end:
            raise ValueError(f"office sessions must be in order and not overlap: "
                             f"{start.isoformat('minutes')}–{end.isoformat('minutes')}")
        previous = end


class WorkingCalendar:
    """Working days and sessions of one agency (or the national default)."""

    def __init__(self, *, sessions: Sequence[tuple[time, time]] = DEFAULT_SESSIONS,
                 days_off: Iterable[date] = (), working_days: Iterable[date] = (),
                 years: range = DEFAULT_YEARS, name: str = "Vietnam") -> None:
        self.name = name
        self.sessions = tuple(sessions)
        check_sessions(self.sessions)
        self._starts = [t.hour * 3600 + t.minute * 60 + t.second for t, _ in self.sessions]
        self._ends = [t.hour * 3600 + t.minute * 60 + t.second for _, t in self.sessions]
        self.day_length = sum(e - s for s, e in zip(self._starts, self._ends, strict=True)) * _US
        country = holidays.country_holidays("VN", years=years)
        off = set(country) | set(days_off)
        extra = set(getattr(country, "weekend_workdays", set())) | set(working_days)
        off -= set(working_days)
        first, last = date(years.start, 1, 1), date(years.stop - 1, 12, 31)
        days = []
        day = first
        while day <= last:
            if (day.weekday() < 5 or day in extra) and day not in off:
                days.append(day.toordinal())
            day += timedelta(days=1)
        self._days = days
        # Local midnight of every working day, so mapping back is an index and an add.
        self._midnights = [datetime.combine(date.fromordinal(d), time(0), VIETNAM_TZ)
                           for d in days]
        self._sessions_us = [(s * _US, e * _US) for s, e in zip(self._starts, self._ends,
                                                                strict=True)]
        # For the fast path of add_working_days: a working day's index by its ordinal,
        # whether each second of a day is inside a session, and whole-day offsets.
        self._index_of = {ordinal: n for n, ordinal in enumerate(days)}
        inside = bytearray(86_400)
        for start, end in zip(self._starts, self._ends, strict=True):
            inside[start + 1:end] = b"\x01" * (end - start - 1)
        self._inside = bytes(inside)
        self._day_offsets = [timedelta(days=n) for n in range(4 * 366)]
        self._close = timedelta(seconds=self._ends[-1])
        self.first, self.last = first, last
        self._first_ordinal, self._last_ordinal = first.toordinal(), last.toordinal()

    # -- days ----------------------------------------------------------------------
    def is_working_day(self, day: date) -> bool:
        """Whether offices work on ``day`` (weekdays and make-up Saturdays, not holidays)."""
        ordinal = day.toordinal()
        index = bisect.bisect_left(self._days, ordinal)
        return index < len(self._days) and self._days[index] == ordinal

    # -- the working-time axis -----------------------------------------------------
    def _position(self, seconds: float) -> int:
        """Working microseconds of the day elapsed at ``seconds`` after midnight."""
        done = 0.0
        for start, end in zip(self._starts, self._ends, strict=True):
            if seconds <= start:
                break
            done += min(seconds, end) - start
        return int(round(done * _US))

    def to_axis(self, instant: datetime) -> int:
        """The working time elapsed from the calendar's start up to ``instant``."""
        local = instant if instant.tzinfo is VIETNAM_TZ else _local(instant)
        ordinal = local.toordinal()
        if not self._first_ordinal <= ordinal <= self._last_ordinal:
            raise InvalidInput(f"{local.date()} is outside the calendar's years "
                               f"{self.first.year}–{self.last.year}")
        index = bisect.bisect_left(self._days, ordinal)
        if index < len(self._days) and self._days[index] == ordinal:
            moment = ((local.hour * 3600 + local.minute * 60 + local.second) * _US
                      + local.microsecond)
            done = 0
            for start, end in self._sessions_us:
                if moment <= start:
                    break
                done += (moment if moment < end else end) - start
            return index * self.day_length + done
        return index * self.day_length  # a day off: counts from the next working day

    def from_axis(self, value: int) -> datetime:
        """The instant at working time ``value``; a whole-day boundary is given as the
        end of the earlier working day."""
        index, position = divmod(value, self.day_length)
        if position == 0 and index > 0:
            index, position = index - 1, self.day_length
        if not 0 <= index < len(self._days):
            raise InvalidInput("the result falls outside the calendar's years "
                               f"{self.first.year}–{self.last.year}")
        moment = 0
        for start, end in self._sessions_us:
            if position <= end - start:
                moment = start + position
                break
            position -= end - start
        return self._midnights[index] + timedelta(microseconds=moment)

    # -- arithmetic ----------------------------------------------------------------
    def next_working_instant(self, instant: datetime) -> datetime:
        """``instant`` itself in office hours, else the start of the next session."""
        value = self.to_axis(instant)
        index, position = divmod(value, self.day_length)
        if index >= len(self._days):
            raise InvalidInput(f"no working day after {instant.isoformat()} in the calendar")
        local = _local(instant)
        day = date.fromordinal(self._days[index])
        if day == local.date():
            seconds = local.hour * 3600 + local.minute * 60 + local.second
            for start, end in zip(self._starts, self._ends, strict=True):
                if start <= seconds < end:
                    return local
                if seconds < start:
                    return datetime.combine(day, _clock(start), VIETNAM_TZ)
            # after the last session: the next working day's first session
            index += 1
            if index >= len(self._days):
                raise InvalidInput(f"no working day after {instant.isoformat()} in the calendar")
            day = date.fromordinal(self._days[index])
            position = 0
        remaining = position
        for start, end in zip(self._starts, self._ends, strict=True):
            if remaining < (end - start) * _US:
                return datetime.combine(day, _clock(start), VIETNAM_TZ) + \
                    timedelta(microseconds=remaining)
            remaining -= (end - start) * _US
        return datetime.combine(day, _clock(self._starts[0]), VIETNAM_TZ)

    def add_working_days(self, instant: datetime, days: float | Decimal | int) -> datetime:
        """``days`` working days after ``instant``, at the same working-clock position."""
        if type(days) is int and instant.tzinfo is VIETNAM_TZ:
            # The usual case, a receipt inside a session: the same wall-clock time on the
            # working day ``days`` places further in the index (Vietnam has no DST).
            ordinal = instant.toordinal()
            index = self._index_of.get(ordinal)
            if index is not None and self._inside[instant.hour * 3600 + instant.minute * 60
                                                  + instant.second]:
                target = index + days
                if 0 <= target < len(self._days):
                    gap = self._days[target] - ordinal
                    if 0 <= gap < len(self._day_offsets):
                        return instant + self._day_offsets[gap]
            elif index is None and days > 0 \
                    and self._first_ordinal <= ordinal <= self._last_ordinal:
                # Received on a day off: counts from the next working day's first session,
                # so N working days end at the close of the N-th working day.
                target = bisect.bisect_left(self._days, ordinal) + days - 1
                if target < len(self._days):
                    return self._midnights[target] + self._close
        step = days * self.day_length if isinstance(days, int) \
            else int(Decimal(str(days)) * self.day_length)
        return self.from_axis(self.to_axis(instant) + step)

    def add_working_hours(self, instant: datetime, hours: float | Decimal | int) -> datetime:
        """``hours`` of office time after ``instant``."""
        step = hours * 3600 * _US if isinstance(hours, int) \
            else int(Decimal(str(hours)) * 3600 * _US)
        return self.from_axis(self.to_axis(instant) + step)

    def start_of_next_working_day(self, instant: datetime) -> datetime:
        """The first session's start on the working day after ``instant``'s date."""
        ordinal = _local(instant).toordinal()
        index = bisect.bisect_right(self._days, ordinal)
        if index >= len(self._days):
            raise InvalidInput(f"no working day after {instant.isoformat()} in the calendar")
        return self._midnights[index] + timedelta(seconds=self._starts[0])

    def end_of_working_day(self, instant: datetime) -> datetime:
        """The close of the working day ``instant`` counts on (the next one, off hours)."""
        value = self.to_axis(self.next_working_instant(instant))
        index = value // self.day_length
        return self.from_axis((index + 1) * self.day_length)

    def add(self, instant: datetime, duration: Duration) -> datetime:
        """``instant`` plus a duration in its own unit."""
        if duration.unit is Unit.WORKING_DAYS:
            return self.add_working_days(instant, duration.value)
        if duration.unit is Unit.WORKING_HOURS:
            return self.add_working_hours(instant, duration.value)
        if duration.unit is Unit.SAME_DAY:
            return self.end_of_working_day(instant)
        # Calendar days; a deadline on a day off moves to the next working day.
        target = _local(instant) + timedelta(days=int(duration.value))
        if self.is_working_day(target.date()):
            return target
        value = self.to_axis(target)
        return self.from_axis(value + self._position(
            target.hour * 3600 + target.minute * 60 + target.second))

    def elapsed(self, start: datetime, end: datetime) -> WorkingTime:
        """Working time between two instants (negative when ``end`` is earlier)."""
        return WorkingTime(self.to_axis(end) - self.to_axis(start), self.day_length)


def _local(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise InvalidInput(f"instant {instant.isoformat()} has no time zone")
    return instant.astimezone(VIETNAM_TZ)


def _clock(seconds: int) -> time:
    return time(seconds // 3600, seconds % 3600 // 60, seconds % 60)


class Calendars:
    """The national calendar plus per-agency overrides, built once each."""

    def __init__(self, overrides: Mapping[str, Mapping[str, Any]] | None = None,
                 source: str | None = None) -> None:
        self.source = source
        self._overrides = dict(overrides or {})
        self._built: dict[str | None, WorkingCalendar] = {}

    def for_agency(self, agency: str | None = None) -> WorkingCalendar:
        """The calendar of ``agency`` (the national one when it has no overrides)."""
        key = agency if agency in self._overrides else None
        calendar = self._built.get(key)
        if calendar is None:
            calendar = self._build(key)
            self._built[key] = calendar
        return calendar

    def _build(self, agency: str | None) -> WorkingCalendar:
        if agency is None:
            return WorkingCalendar()
        entry = self._overrides[agency]
        return WorkingCalendar(sessions=entry.get("sessions", DEFAULT_SESSIONS),
                               days_off=entry.get("days_off", ()),
                               working_days=entry.get("working_days", ()), name=agency)


def load_calendars(path: str | Path | None) -> Calendars:
    """Read a per-agency override file (JSON)::

        {"agencies": {"AN-BINH-MC": {"days_off": ["2026-02-13"], "working_days": [],
                                      "sessions": [["07:00", "11:30"], ["13:30", "17:00"]]}}}
    """
    if path is None:
        return Calendars()
    name = str(path)
    data = read_data_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("agencies", {}), dict):
        raise CatalogError("must be an object with an 'agencies' object", file=name)
    overrides: dict[str, dict[str, Any]] = {}
    for agency, raw in data.get("agencies", {}).items():
        if not isinstance(raw, dict):
            raise CatalogError("must be an object", file=name, entry=agency)
        entry: dict[str, Any] = {}
        for key in raw:
            if key not in ("days_off", "working_days", "sessions"):
                raise CatalogError(f"unknown key {key!r}", file=name, entry=agency, field=key)
        for key in ("days_off", "working_days"):
            try:
                entry[key] = [date.fromisoformat(d) for d in raw.get(key, [])]
            except (TypeError, ValueError) as exc:
                raise CatalogError(f"dates are YYYY-MM-DD: {exc}", file=name, entry=agency,
                                   field=key) from None
        if "sessions" in raw:
            try:
                entry["sessions"] = [(time.fromisoformat(a), time.fromisoformat(b))
                                     for a, b in raw["sessions"]]
                check_sessions(entry["sessions"])
            except (TypeError, ValueError) as exc:
                raise CatalogError(f"sessions are [[\"HH:MM\", \"HH:MM\"], ...] in order: "
                                   f"{exc}", file=name, entry=agency, field="sessions") from None
        overrides[agency] = entry
    return Calendars(overrides, name)

