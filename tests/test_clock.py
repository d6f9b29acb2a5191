"""The clock seam: time only moves when a manual clock is told to."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from onestop import VIETNAM_TZ, ManualClock, SystemClock


def test_manual_clock_moves_only_forward_and_only_when_told():
    start = datetime(2025, 4, 25, 16, 0, tzinfo=VIETNAM_TZ)
    clock = ManualClock(start)
    assert clock.now() == clock.now() == start
    assert clock.advance(hours=1, minutes=30) == start + timedelta(hours=1, minutes=30)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.set(start)
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(timedelta(seconds=-1))


def test_naive_instants_are_refused():
    with pytest.raises(ValueError, match="no time zone"):
        ManualClock(datetime(2025, 4, 25, 16, 0))


def test_system_clock_speaks_vietnam_time():
    assert SystemClock().now().utcoffset() == timedelta(hours=7)


def test_engine_stamps_events_with_the_injected_clock(engine, clock):
    clock.advance(days=3, hours=2)
    dossier = engine.receive("2.000575", applicant={"name": "A"}, components=["giay-de-nghi"],
                             officer="tn.an")
    assert dossier.received_at == datetime(2025, 7, 10, 10, 0, tzinfo=VIETNAM_TZ)
    assert dossier.code.endswith("-250710-0001")
    assert {e.at for e in engine.history(dossier.code)} == {dossier.received_at}
