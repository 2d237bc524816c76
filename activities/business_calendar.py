"""Business-day and business-hour arithmetic for due times.

Weekends, US federal holidays (computed by the `holidays` package for any year, observed
dates) and a site's extra closures, in the facility's time zone. Used only from activities,
so that a holiday-table or tzdata upgrade never changes a due time under replay (DESIGN.md
invariant 5): a due time is computed once and then read back from history.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib.metadata import version

import holidays

from schemas.protocol import DueUnit
from schemas.site import CalendarConfig


@lru_cache(maxsize=1)
def _holidays_version() -> str:
    """Read once: importlib.metadata scans the installed distributions on every call (4.6%
    of a busy worker's CPU in a py-spy profile, one call per plan)."""
    return version("holidays")


def calendar_name(config: CalendarConfig) -> str:
    """The calendar and its version, recorded in every plan."""
    extra = f"+{len(config.extra_closures)} site closures" if config.extra_closures else ""
    return f"us-federal/holidays-{_holidays_version()}{extra}"


@lru_cache(maxsize=64)
def _federal_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("US", years=year).keys())


class BusinessCalendar:
    def __init__(self, config: CalendarConfig) -> None:
        self.config = config
        self.zone = config.zone()
        self._closures = frozenset(config.extra_closures)

    def is_business_day(self, day: date) -> bool:
        """Monday to Friday except US federal holidays (observed) and site closures."""
        return (
            day.weekday() < 5
            and day not in _federal_holidays(day.year)
            and day not in self._closures
        )

    def add_business_days(self, start: date, count: int) -> date:
        """The `count`-th business day after `start` (start itself is day 0, never counted)."""
        day = start
        remaining = count
        while remaining > 0:
            day += timedelta(days=1)
            if self.is_business_day(day):
                remaining -= 1
        return day

    def end_of_day(self, day: date) -> datetime:
        return self.config.end_of_day(day)

    def add_business_hours(self, start: datetime, hours: int) -> datetime:
        """`hours` working hours after `start`, counting only inside the working day."""
        local = start.astimezone(self.zone)
        remaining = timedelta(hours=hours)
        day = local.date()
        opens, closes = self.config.business_day_start, self.config.business_day_end
        cursor = local
        while True:
            if self.is_business_day(day):
                window_start = datetime.combine(day, opens, tzinfo=self.zone)
                window_end = datetime.combine(day, closes, tzinfo=self.zone)
                begin = max(cursor, window_start)
                if begin < window_end:
                    available = window_end - begin
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
            day += timedelta(days=1)
            cursor = datetime.combine(day, time(0, 0), tzinfo=self.zone)

    def offset(self, anchor: datetime, unit: DueUnit, amount: int) -> datetime:
        """`amount` units after `anchor`; day units end at the end of the local day."""
        if unit == DueUnit.HOURS:
            # Elapsed hours: in UTC, since aware arithmetic in one zone is wall-clock time
            # (a 48-hour deadline across a DST change would be 47 or 49 real hours).
            return (anchor.astimezone(UTC) + timedelta(hours=amount)).astimezone(self.zone)
        if unit == DueUnit.BUSINESS_HOURS:
            return self.add_business_hours(anchor, amount)
        anchor_day = anchor.astimezone(self.zone).date()
        if unit == DueUnit.CALENDAR_DAYS:
            return self.end_of_day(anchor_day + timedelta(days=amount))
        return self.end_of_day(self.add_business_days(anchor_day, amount))

    def period_end(self, discharged_at: datetime, days: int) -> datetime:
        return self.config.period_end(discharged_at, days)
