"""The only place in onestop that knows what time it is.

The engine takes a :class:`Clock`. Production uses :class:`SystemClock`; tests and
simulations use :class:`ManualClock` and move time themselves, so nothing ever waits on
the wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable

from .errors import InvalidInput

#: Vietnam's civil time (UTC+7, no daylight saving).
VIETNAM_TZ = timezone(timedelta(hours=7), "ICT")


@runtime_checkable
class Clock(Protocol):
    """Anything with a ``now()`` returning a timezone-aware datetime."""

    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    """The real time, in Vietnam's time zone."""

    def now(self) -> datetime:
        """The current instant in Vietnam's time zone."""
        return datetime.now(VIETNAM_TZ)


class ManualClock:
    """A clock that only moves when told to: for tests and simulation.

    >>> clock = ManualClock(datetime(2025, 7, 1, 8, 0, tzinfo=VIETNAM_TZ))
    >>> clock.advance(hours=2).hour
    10
    """

    def __init__(self, start: datetime) -> None:
        self._now = _aware(start)

    def now(self) -> datetime:
        """The instant the clock was last set or advanced to."""
        return self._now

    def set(self, instant: datetime) -> datetime:
        """Jump to ``instant``; time never goes backwards."""
        instant = _aware(instant)
        if instant < self._now:
            raise InvalidInput(f"ManualClock cannot go back from {self._now.isoformat()} "
                             f"to {instant.isoformat()}")
        self._now = instant
        return self._now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**kwargs)``; returns the new now."""
        try:
            step = delta if delta is not None else timedelta(**kwargs)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidInput(f"ManualClock.advance: {exc}") from None
        if not isinstance(step, timedelta):
            raise InvalidInput(f"ManualClock.advance takes a timedelta, not {step!r}")
        if step < timedelta(0):
            raise InvalidInput("ManualClock cannot go back in time")
        try:
            self._now = self._now + step
        except OverflowError:
            raise InvalidInput(f"ManualClock.advance: {step} goes past the last date "
                               f"a clock can tell") from None
        return self._now


def _aware(instant: datetime) -> datetime:
    if not isinstance(instant, datetime):
        raise InvalidInput(f"a clock instant is a datetime, not {instant!r}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidInput(f"instant {instant.isoformat()} has no time zone; give one "
                         f"(for Vietnam: onestop.clock.VIETNAM_TZ)")
    return instant
