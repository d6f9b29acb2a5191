"""Working-time arithmetic pinned to real Vietnamese calendar cases."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta

import pytest

from onestop import VIETNAM_TZ, CatalogError, Duration, InvalidInput
from onestop.calendar import WorkingCalendar, load_calendars
from onestop.cli import main

CAL = WorkingCalendar()


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=VIETNAM_TZ)


def test_friday_16h_receipt_counts_the_2025_04_26_makeup_saturday_and_skips_the_holidays():
    # Sat 26/4 is a make-up working day; 30/4, 1/5 and the swapped 2/5 are off.
    assert CAL.is_working_day(date(2025, 4, 26))
    assert not CAL.is_working_day(date(2025, 5, 2))
    assert CAL.add_working_days(at(2025, 4, 25, 16, 0), 5) == at(2025, 5, 6, 16, 0)
    assert CAL.add_working_hours(at(2025, 4, 25, 16, 0), 4) == at(2025, 4, 26, 10, 30)


def test_tet_2025_block_is_skipped():
    for day in range(27, 32):
        assert not CAL.is_working_day(date(2025, 1, day))
    assert CAL.add_working_days(at(2025, 1, 24, 10, 0), 1) == at(2025, 2, 3, 10, 0)


def test_tet_2026_block_is_skipped():
    for day in range(16, 21):
        assert not CAL.is_working_day(date(2026, 2, day))
    assert CAL.add_working_days(at(2026, 2, 13, 9, 0), 2) == at(2026, 2, 24, 9, 0)


def test_holiday_on_a_weekend_is_observed_on_monday():
    # Hùng Kings' day 2026 falls on Sunday 26/4; Monday 27/4 is off instead.
    assert not CAL.is_working_day(date(2026, 4, 27))
    assert CAL.add_working_days(at(2026, 4, 24, 9, 0), 1) == at(2026, 4, 28, 9, 0)


def test_outside_office_hours_counts_from_the_next_session():
    assert CAL.next_working_instant(at(2025, 7, 7, 6, 0)) == at(2025, 7, 7, 7, 30)
    assert CAL.next_working_instant(at(2025, 7, 7, 12, 0)) == at(2025, 7, 7, 13, 0)
    assert CAL.next_working_instant(at(2025, 7, 11, 17, 30)) == at(2025, 7, 14, 7, 30)
    assert CAL.next_working_instant(at(2025, 7, 8, 9, 15)) == at(2025, 7, 8, 9, 15)
    # Received on Saturday evening: two working days run Monday and Tuesday.
    assert CAL.add_working_days(at(2025, 7, 12, 19, 0), 2) == at(2025, 7, 15, 17, 0)
    # Lunch time counts as the end of the morning session.
    assert CAL.add_working_hours(at(2025, 7, 7, 12, 15), 1) == at(2025, 7, 7, 14, 0)


def test_fractional_days_and_durations_in_their_units():
    assert CAL.add(at(2025, 7, 7, 8, 0), Duration.parse("1.5wd")) == at(2025, 7, 8, 13, 30)
    assert CAL.add(at(2025, 7, 7, 10, 0), Duration.parse("same_day")) == at(2025, 7, 7, 17, 0)
    assert CAL.add(at(2025, 7, 11, 18, 0), Duration.parse("same_day")) == at(2025, 7, 14, 17, 0)
    # Calendar days: 30 days after 1/8/2025 is Sunday 31/8; the deadline moves to the
    # next working day, 3/9 (1 and 2/9 are National Day).
    assert CAL.add(at(2025, 8, 1, 10, 0), Duration.parse("30d")) == at(2025, 9, 3, 10, 0)


def test_elapsed_working_time():
    spent = CAL.elapsed(at(2025, 4, 25, 16, 0), at(2025, 5, 6, 9, 0))
    assert (spent.days, spent.hours, spent.total_hours) == (4, 2.5, 34.5)
    assert CAL.elapsed(at(2025, 5, 1, 8, 0), at(2025, 5, 4, 8, 0)).total_hours == 0


def test_agency_overrides_add_days_off_working_days_and_sessions(tmp_path):
    path = tmp_path / "calendars.json"
    path.write_text(json.dumps({"agencies": {"AN-BINH-MC": {
        "days_off": ["2025-07-08"], "working_days": ["2025-07-12"],
        "sessions": [["07:00", "11:30"], ["13:30", "17:00"]]}}}), encoding="utf-8")
    calendars = load_calendars(path)
    local = calendars.for_agency("AN-BINH-MC")
    assert local.sessions[0] == (time(7, 0), time(11, 30))
    assert not local.is_working_day(date(2025, 7, 8)) and local.is_working_day(date(2025, 7, 12))
    assert local.add_working_days(at(2025, 7, 7, 9, 0), 1) == at(2025, 7, 9, 9, 0)
    assert calendars.for_agency("SO-TU-PHAP").add_working_days(at(2025, 7, 7, 9, 0), 1) == \
        at(2025, 7, 8, 9, 0)


@pytest.mark.parametrize("content, field", [
    ({"agencies": {"X": {"days_off": ["8/7/2025"]}}}, "days_off"),
    ({"agencies": {"X": {"sessions": [["13:00", "17:00"], ["07:30", "11:30"]]}}}, "sessions"),
    ({"agencies": {"X": {"holidays": []}}}, "holidays"),
])
def test_bad_override_data_names_agency_and_field(tmp_path, content, field):
    path = tmp_path / "calendars.json"
    path.write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(CatalogError) as refused:
        load_calendars(path)
    assert refused.value.entry == "X" and refused.value.field == field


def test_naive_and_out_of_range_instants_are_refused():
    with pytest.raises(InvalidInput, match="no time zone"):
        CAL.add_working_days(datetime(2025, 7, 7, 8, 0), 1)
    with pytest.raises(InvalidInput, match="outside the calendar"):
        CAL.add_working_days(at(1999, 7, 7, 8, 0), 1)


def test_cli_due_and_elapsed(capsys):
    assert main(["calendar", "due", "--start", "2025-04-25T16:00+07:00",
                 "--working-days", "5"]) == 0
    assert capsys.readouterr().out.strip() == "2025-05-06T16:00:00+07:00"
    assert main(["calendar", "due", "--start", "2025-04-25T16:00+07:00",
                 "--working-hours", "4"]) == 0
    assert capsys.readouterr().out.strip() == "2025-04-26T10:30:00+07:00"
    # The provincial centre opens at 07:00 (processes/calendars.json).
    assert main(["calendar", "due", "--start", "2025-04-25T16:00+07:00",
                 "--working-hours", "4", "--agency", "TINH-TTPVHCC"]) == 0
    assert capsys.readouterr().out.strip() == "2025-04-26T10:00:00+07:00"
    assert main(["calendar", "elapsed", "--start", "2025-04-25T16:00+07:00",
                 "--end", "2025-05-06T09:00+07:00"]) == 0
    assert capsys.readouterr().out.strip() == "4 working days 2.5 hours (34.5 working hours)"
    assert main(["calendar", "due", "--start", "2025-04-25T16:00", "--working-days", "1"]) == 2
    assert "has no time zone" in capsys.readouterr().err


def test_fast_path_agrees_with_the_working_time_axis():
    import random
    rng = random.Random(7)
    for _ in range(3000):
        instant = at(2025, 1, 1) + timedelta(
            days=rng.randrange(700), seconds=rng.randrange(86_400))
        days = rng.randrange(-5, 25)
        expected = CAL.from_axis(CAL.to_axis(instant) + days * CAL.day_length)
        assert CAL.add_working_days(instant, days) == expected, (instant, days)
