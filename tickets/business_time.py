"""Business time: how much of an interval falls inside a tenant's weekly business hours, minus holidays,
computed in the tenant's IANA time zone (so a DST change moves the hours with the wall clock)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# weekday (Monday = 0) -> [(start, end)] in local wall-clock time; end may be time.max for "to midnight"
WeeklyHours = Mapping[int, Sequence[tuple[time, time]]]

ALWAYS_OPEN: dict[int, list[tuple[time, time]]] = {day: [(time(0), time.max)] for day in range(7)}


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str = "Asia/Jakarta"
    weekly_hours: WeeklyHours = field(default_factory=lambda: ALWAYS_OPEN)
    holidays: frozenset[date] = frozenset()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def open_intervals(self, day: date) -> Iterable[tuple[datetime, datetime]]:
        """The business intervals of one local day as aware datetimes (empty on holidays)."""
        if day in self.holidays:
            return
        zone = self.zone
        for start, end in self.weekly_hours.get(day.weekday(), ()):
            opens = datetime.combine(day, start, zone)
            closes = (
                datetime.combine(day + timedelta(days=1), time(0), zone)
                if end == time.max
                else datetime.combine(day, end, zone)
            )
            # Arithmetic between datetimes of the same zone ignores DST offsets: work in UTC.
            opens, closes = opens.astimezone(UTC), closes.astimezone(UTC)
            if closes > opens:
                yield opens, closes

    def schedule(self, start: datetime, days_before: int, days_after: int) -> list[tuple[datetime, datetime]]:
        """The business intervals from `days_before` local days before `start`'s to `days_after` after it, in
        order, touching ones joined (what a client needs to count business time itself)."""
        first = self.local_date(start) - timedelta(days=days_before)
        joined: list[tuple[datetime, datetime]] = []
        for offset in range(days_before + days_after + 1):
            for opens, closes in self.open_intervals(first + timedelta(days=offset)):
                if joined and opens <= joined[-1][1]:
                    joined[-1] = (joined[-1][0], max(joined[-1][1], closes))
                else:
                    joined.append((opens, closes))
        return joined

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Business seconds in [start, end); 0 when end <= start."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        if end <= start:
            return 0.0
        total = 0.0
        day = self.local_date(start) - timedelta(days=1)  # an interval may begin the local day before
        last = self.local_date(end)
        while day <= last:
            for opens, closes in self.open_intervals(day):
                overlap = (min(end, closes) - max(start, opens)).total_seconds()
                if overlap > 0:
                    total += overlap
            day += timedelta(days=1)
        return total

    def add_business_seconds(
        self, start: datetime, seconds: float, horizon_days: int = 400
    ) -> datetime | None:
        """The moment `seconds` of business time after `start` (None if the calendar has no hours)."""
        start = start.astimezone(UTC)
        remaining = seconds
        day = self.local_date(start) - timedelta(days=1)
        for _ in range(horizon_days):
            for opens, closes in self.open_intervals(day):
                begin = max(start, opens)
                if closes <= begin:
                    continue
                available = (closes - begin).total_seconds()
                if available >= remaining:
                    return begin + timedelta(seconds=remaining)
                remaining -= available
            day += timedelta(days=1)
        return None
