"""The offboarding's calendar without a server: real days and days scaled to seconds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from offboarding.workflows.clock import Clock

START = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)


class Now:
    def __init__(self) -> None:
        self.at = START

    def __call__(self) -> datetime:
        return self.at


def test_real_days_start_at_midnight_utc_and_count_whole_days_lived() -> None:
    now = Now()
    clock = Clock(now, None)
    assert clock.at(date(2026, 12, 1)) == datetime(2026, 12, 1, tzinfo=UTC)
    assert clock.days(2.5) == timedelta(days=2, hours=12)
    now.at = START + timedelta(hours=20)  # the next calendar day, but not a whole day lived
    assert clock.today() == date(2026, 11, 21)
    assert clock.as_date(now.at) == "2026-11-22", "people see the calendar date"
    now.at = START + timedelta(days=1)
    assert clock.today() == date(2026, 11, 22)


def test_scaled_days_map_dates_onto_seconds_from_the_start() -> None:
    now = Now()
    clock = Clock(now, timedelta(seconds=2))
    assert clock.days(3) == timedelta(seconds=6)
    assert clock.at(date(2026, 11, 21)) == START
    assert clock.at(date(2026, 12, 21)) == START + timedelta(seconds=60)
    now.at = START + timedelta(seconds=61)
    assert clock.today() == date(2026, 12, 21)
    assert clock.as_date(START + timedelta(seconds=5)) == "2026-11-23"
