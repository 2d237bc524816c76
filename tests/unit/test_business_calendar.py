"""Due times: 'within 2 business days' skips weekends and federal holidays, ends at local
end of day; calendar days and hours count as written."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.exceptions import ApplicationError

from activities.business_calendar import add_business_days, due_at, is_business_day
from activities.planning import build_plan
from schemas.protocol import TCM_MINIMAL, DueRule, DueUnit
from schemas.transition import PlanRequest

NY = ZoneInfo("America/New_York")
TWO_BUSINESS_DAYS = DueRule(unit=DueUnit.BUSINESS_DAYS, amount=2)


@pytest.mark.parametrize(
    ("discharge_day", "expected"),
    [
        (date(2026, 11, 16), date(2026, 11, 18)),  # Monday -> Wednesday
        (date(2026, 11, 20), date(2026, 11, 24)),  # Friday -> Tuesday
        (date(2026, 11, 21), date(2026, 11, 24)),  # Saturday -> Tuesday
        (date(2026, 11, 25), date(2026, 11, 30)),  # Wednesday before Thanksgiving -> Monday
        (date(2026, 12, 24), date(2026, 12, 29)),  # Christmas Day (Friday) skipped -> Tuesday
        (date(2027, 1, 15), date(2027, 1, 20)),  # Friday before MLK Day -> Wednesday
    ],
)
def test_two_business_days_skip_weekends_and_federal_holidays(
    discharge_day: date, expected: date
) -> None:
    assert add_business_days(discharge_day, 2) == expected


def test_holidays_and_weekends_are_not_business_days() -> None:
    assert not is_business_day(date(2026, 11, 26))  # Thanksgiving
    assert not is_business_day(date(2026, 7, 3))  # Independence Day observed (Friday)
    assert not is_business_day(date(2026, 11, 22))  # Sunday
    assert is_business_day(date(2026, 11, 23))


def test_business_day_due_time_is_end_of_local_day() -> None:
    discharged = datetime(2026, 11, 20, 23, 30, tzinfo=NY)
    expected = datetime(2026, 11, 24, 23, 59, 59, tzinfo=NY)
    assert due_at(discharged, TWO_BUSINESS_DAYS, NY) == expected


def test_discharge_day_is_taken_in_the_facility_zone_not_utc() -> None:
    # 02:30 UTC Saturday is still Friday evening in New York.
    discharged = datetime(2026, 11, 21, 2, 30, tzinfo=ZoneInfo("UTC"))
    assert due_at(discharged, TWO_BUSINESS_DAYS, NY).date() == date(2026, 11, 24)


def test_calendar_days_and_hours() -> None:
    discharged = datetime(2026, 11, 20, 14, 0, tzinfo=NY)
    fourteen = due_at(discharged, DueRule(unit=DueUnit.CALENDAR_DAYS, amount=14), NY)
    assert fourteen == datetime(2026, 12, 4, 23, 59, 59, tzinfo=NY)
    hours = due_at(discharged, DueRule(unit=DueUnit.HOURS, amount=24), NY)
    assert hours == discharged + timedelta(hours=24)


def test_plan_for_the_minimal_protocol_dates_every_step() -> None:
    discharged = datetime(2026, 11, 25, 10, 0, tzinfo=NY)
    request = PlanRequest(discharged_at=discharged, protocol=TCM_MINIMAL)
    plan = build_plan(request, "America/New_York")
    due = {step.step_id: step.due_at for step in plan.steps}
    assert due == {
        "medication_reconciliation": datetime(2026, 12, 9, 23, 59, 59, tzinfo=NY),
        "interactive_contact": datetime(2026, 11, 30, 23, 59, 59, tzinfo=NY),
    }
    assert plan.timezone == "America/New_York"
    assert plan.calendar.startswith("us-federal/holidays-")


def test_unknown_time_zone_is_a_non_retryable_error() -> None:
    request = PlanRequest(
        discharged_at=datetime(2026, 11, 25, 10, 0, tzinfo=NY),
        timezone="Mars/Olympus_Mons",
        protocol=TCM_MINIMAL,
    )
    with pytest.raises(ApplicationError) as info:
        build_plan(request, "America/New_York")
    assert info.value.non_retryable
