"""Business-day arithmetic for due times (weekends and US federal holidays).

Pure functions, used only from activities so that a holiday-table or tzdata upgrade never
changes a due time under replay (DESIGN.md invariant 5): a due time is computed once and
then read back from history.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from importlib.metadata import version
from zoneinfo import ZoneInfo

import holidays

from schemas.protocol import DueRule, DueUnit

END_OF_DAY = time(23, 59, 59)


def calendar_name() -> str:
    """The calendar and its version, recorded in every plan."""
    return f"us-federal/holidays-{version('holidays')}"


@lru_cache(maxsize=64)
def _federal_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("US", years=year).keys())


def is_business_day(day: date) -> bool:
    """Monday to Friday except US federal holidays (observed dates)."""
    return day.weekday() < 5 and day not in _federal_holidays(day.year)


def add_business_days(start: date, count: int) -> date:
    """The `count`-th business day after `start` (start itself is day 0 and never counts)."""
    day = start
    remaining = count
    while remaining > 0:
        day += timedelta(days=1)
        if is_business_day(day):
            remaining -= 1
    return day


def end_of_local_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, END_OF_DAY, tzinfo=zone)


def due_at(discharged_at: datetime, rule: DueRule, zone: ZoneInfo) -> datetime:
    """The instant a step is due, as an aware datetime in the facility's zone."""
    if rule.unit == DueUnit.HOURS:
        return (discharged_at + timedelta(hours=rule.amount)).astimezone(zone)
    discharge_day = discharged_at.astimezone(zone).date()
    if rule.unit == DueUnit.CALENDAR_DAYS:
        return end_of_local_day(discharge_day + timedelta(days=rule.amount), zone)
    return end_of_local_day(add_business_days(discharge_day, rule.amount), zone)
