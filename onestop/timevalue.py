"""What a timer's text means, without running anything: an ISO 8601 duration kept in its
parts (the calendar decides what a day is), onestop's units (``1.5wd``), an instant, or an
expression over the dossier's data and its service-level instants."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from dateutil.relativedelta import relativedelta

from .duration import Duration

#: Names a timer expression may use besides the dossier's data: the appointment, the
#: latest lawful instant for the apology letter, when to warn the responsible agency, and
#: the due instant for a dossier that has had no apology (see onestop.rules.late_path).
SLA_NAMES = ("appointment", "apology_due", "apology_warning", "apology_overdue")

_ISO_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+(?:\.\d+)?)Y)?(?:(?P<months>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$", re.IGNORECASE)
_ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                          r"(Z|[+-]\d{2}:?\d{2})?)?$")


@dataclass(frozen=True)
class IsoDuration:
    """An ISO 8601 duration, kept in its parts so the clock decides what a day is."""

    years: float = 0
    months: float = 0
    weeks: float = 0
    days: float = 0
    seconds: float = 0

    @classmethod
    def parse(cls, text: str) -> "IsoDuration":
        """Parse an ISO 8601 duration such as ``P2D`` or ``PT4H``; ValueError otherwise."""
        match = _ISO_DURATION.match(text.strip())
        if match is None:
            raise ValueError(f"'{text}' is not an ISO 8601 duration such as P2D or PT4H")
        parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
        seconds = parts.pop("hours", 0) * 3600 + parts.pop("minutes", 0) * 60 \
            + parts.pop("seconds", 0)
        return cls(seconds=seconds, **parts)

    def in_working_time(self) -> tuple[float, float]:
        """(working days, working hours); a year or month has no fixed working length."""
        if self.years or self.months:
            raise ValueError("years and months have no fixed length in working time: write "
                             "days (P20D) or hours, or count this timer in calendar time")
        return self.weeks * 5 + self.days, self.seconds / 3600

    def after(self, instant: datetime) -> datetime:
        """``instant`` plus this duration in calendar time."""
        whole_years, whole_months = int(self.years), int(self.months)
        extra_days = (self.years - whole_years) * 365 + (self.months - whole_months) * 30
        moved: datetime = instant + relativedelta(
            years=whole_years, months=whole_months, weeks=self.weeks,
            days=self.days + extra_days, seconds=self.seconds)
        return moved


TimerValue = IsoDuration | Duration | datetime


def read_value(value: Any) -> TimerValue:
    """What a timer's text or computed value means; ValueError when it means nothing."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"instant {value.isoformat()} has no UTC offset")
        return value
    if not isinstance(value, str):
        raise ValueError(f"a timer needs a duration or an instant, not "
                         f"{type(value).__name__}")
    text = value.strip()
    if text.upper().startswith("P"):
        return IsoDuration.parse(text)
    if _ISO_INSTANT.match(text):
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if instant.tzinfo is None:
            raise ValueError(f"instant {text!r} needs a UTC offset, e.g. {text}+07:00")
        return instant
    return Duration.parse(text)


def literal(expression: str) -> TimerValue | None:
    """The value of a timer written as a constant (bare or quoted); None for an
    expression the evaluator has to compute."""
    text = (expression or "").strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    try:
        return read_value(text)
    except ValueError:
        if text.upper().startswith("P") and re.fullmatch(r"[A-Za-z0-9.,]+", text) \
                and any(c.isdigit() for c in text):
            raise  # looks like a duration but is not one: say so, not "unknown name"
        return None


@lru_cache(maxsize=256)
def uses_sla(expression: str) -> bool:
    """True when a timer expression depends on the service-level instants."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False        # not an expression (refused where it is evaluated)
    return any(isinstance(node, ast.Name) and node.id in SLA_NAMES for node in ast.walk(tree))
