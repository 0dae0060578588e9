"""An offboarding's calendar: real days, or days scaled down (``Timings.day_length``) so
a demo or a test lives through a contract in seconds. Every date the workflow waits for
or shows a person goes through here, so the two never disagree.

Pure: the current time is passed in (``workflow.now`` in the workflow), so the scaling
is tested without a server (tests/unit/test_clock.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta


class Clock:
    def __init__(self, now: Callable[[], datetime], day_length: timedelta | None) -> None:
        self.now = now
        self.day_length = day_length
        self.start = now()
        self.first_day = self.start.date()

    def days(self, n: float) -> timedelta:
        return (self.day_length or timedelta(days=1)) * n

    def at(self, d: date) -> datetime:
        """The moment a calendar day begins (midnight UTC, or its scaled equivalent)."""
        if self.day_length is None:
            return datetime.combine(d, time(0), tzinfo=UTC)
        return self.start + self.days((d - self.first_day).days)

    def today(self) -> date:
        """The first day plus the whole days lived since the start (with real days too:
        what decides whether a notice is late, so it must never change for a running
        offboarding)."""
        return self._day_number(self.now())

    def as_date(self, when: datetime) -> str:
        """How a moment is shown to people: the (possibly scaled) calendar date."""
        if self.day_length is None:
            return when.date().isoformat()
        return self._day_number(when).isoformat()

    def _day_number(self, when: datetime) -> date:
        return self.first_day + timedelta(days=int((when - self.start) / self.days(1)))
