"""Durations as procedures state them: a number and a unit that is kept with it.

``15wd`` (working days), ``4wh`` (working hours), ``30d`` (calendar days) and
``same_day`` (trong ngày). The arithmetic that turns them into instants lives in the
calendar; this module only parses and prints them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum


class Unit(str, Enum):
    """The unit a duration is counted in."""

    WORKING_DAYS = "wd"
    WORKING_HOURS = "wh"
    CALENDAR_DAYS = "d"
    SAME_DAY = "same_day"


#: Working hours of a nominal working day (07:30–11:30, 13:00–17:00).
NOMINAL_DAY_HOURS = Decimal(8)

_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(wd|wh|d)\s*$")


@dataclass(frozen=True)
class Duration:
    """A legal or allotted time: ``Duration.parse("1.5wd")``."""

    value: Decimal
    unit: Unit

    @classmethod
    def parse(cls, text: str) -> "Duration":
        """Parse ``"15wd"``, ``"4wh"``, ``"30d"`` or ``"same_day"``; ValueError otherwise."""
        if not isinstance(text, str):
            raise ValueError(f"a duration is text such as '15wd', not {type(text).__name__}")
        if text.strip() == "same_day":
            return cls(Decimal(0), Unit.SAME_DAY)
        match = _PATTERN.match(text)
        if match is None:
            raise ValueError(f"'{text}' is not a duration: write a number and a unit, "
                             f"e.g. '15wd' (working days), '4wh' (working hours), "
                             f"'30d' (calendar days), or 'same_day'")
        try:
            value = Decimal(match.group(1))
        except InvalidOperation as exc:  # pragma: no cover - the pattern admits only digits
            raise ValueError(f"'{text}' is not a duration") from exc
        return cls(value, Unit(match.group(2)))

    def nominal_hours(self) -> Decimal:
        """The duration in working hours on a nominal 8-hour working day, to compare
        durations of different units (``same_day`` counts as one working day; a calendar
        day as at most one working day)."""
        if self.unit is Unit.WORKING_HOURS:
            return self.value
        if self.unit is Unit.SAME_DAY:
            return NOMINAL_DAY_HOURS
        return self.value * NOMINAL_DAY_HOURS

    def __str__(self) -> str:
        if self.unit is Unit.SAME_DAY:
            return "same_day"
        return f"{self.value.normalize():f}{self.unit.value}"
