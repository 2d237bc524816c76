"""Due times: 'within 2 business days' skips weekends, federal holidays and site closures and
ends at local end of day; business hours count only working hours; plans date every step."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.exceptions import ApplicationError

from activities.business_calendar import BusinessCalendar
from activities.planning import build_plan, schedule_step
from schemas.protocol import DueUnit, RiskTier
from schemas.protocol_library import load_library
from schemas.site import CalendarConfig
from schemas.transition import PlanRequest, ScheduleStepRequest

NY = ZoneInfo("America/New_York")
CALENDAR = BusinessCalendar(CalendarConfig(timezone="America/New_York"))
LIBRARY = load_library(Path(__file__).resolve().parents[2] / "protocols")


@pytest.mark.parametrize(
    ("discharge_day", "expected"),
    [
        (date(2026, 11, 16), date(2026, 11, 18)),  # Monday -> Wednesday
        (date(2026, 11, 20), date(2026, 11, 24)),  # Friday -> Tuesday
        (date(2026, 11, 21), date(2026, 11, 24)),  # Saturday -> Tuesday
        (date(2026, 11, 25), date(2026, 11, 30)),  # Wednesday before Thanksgiving -> Monday
        (date(2026, 12, 24), date(2026, 12, 29)),  # Christmas Day (Friday) skipped -> Tuesday
        (date(2027, 1, 15), date(2027, 1, 20)),  # Friday before MLK Day -> Wednesday
        (date(2031, 11, 26), date(2031, 12, 1)),  # Thanksgiving years ahead: computed, no list
    ],
)
def test_two_business_days_skip_weekends_and_federal_holidays(
    discharge_day: date, expected: date
) -> None:
    assert CALENDAR.add_business_days(discharge_day, 2) == expected


def test_site_closures_are_not_business_days() -> None:
    closed = BusinessCalendar(CalendarConfig(extra_closures=(date(2026, 11, 23),)))
    assert closed.add_business_days(date(2026, 11, 20), 2) == date(2026, 11, 25)
    assert CALENDAR.is_business_day(date(2026, 11, 23))


def test_holidays_and_weekends_are_not_business_days() -> None:
    assert not CALENDAR.is_business_day(date(2026, 11, 26))  # Thanksgiving
    assert not CALENDAR.is_business_day(date(2026, 7, 3))  # Independence Day observed (Friday)
    assert not CALENDAR.is_business_day(date(2026, 11, 22))  # Sunday
    assert CALENDAR.is_business_day(date(2026, 11, 23))


def test_business_day_due_time_is_end_of_local_day() -> None:
    discharged = datetime(2026, 11, 20, 23, 30, tzinfo=NY)
    expected = datetime(2026, 11, 24, 23, 59, 59, tzinfo=NY)
    assert CALENDAR.offset(discharged, DueUnit.BUSINESS_DAYS, 2) == expected


def test_discharge_day_is_taken_in_the_facility_zone_not_utc() -> None:
    # 02:30 UTC Saturday is still Friday evening in New York.
    discharged = datetime(2026, 11, 21, 2, 30, tzinfo=ZoneInfo("UTC"))
    assert CALENDAR.offset(discharged, DueUnit.BUSINESS_DAYS, 2).date() == date(2026, 11, 24)


def test_calendar_days_and_hours() -> None:
    discharged = datetime(2026, 11, 20, 14, 0, tzinfo=NY)
    fourteen = CALENDAR.offset(discharged, DueUnit.CALENDAR_DAYS, 14)
    assert fourteen == datetime(2026, 12, 4, 23, 59, 59, tzinfo=NY)
    assert CALENDAR.offset(discharged, DueUnit.HOURS, 24) == discharged + timedelta(hours=24)


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (
            datetime(2026, 11, 24, 23, 59, 59, tzinfo=NY),
            4,
            datetime(2026, 11, 25, 12, 0, tzinfo=NY),
        ),
        (datetime(2026, 11, 24, 15, 0, tzinfo=NY), 4, datetime(2026, 11, 25, 10, 0, tzinfo=NY)),
        (datetime(2026, 11, 25, 16, 0, tzinfo=NY), 4, datetime(2026, 11, 27, 11, 0, tzinfo=NY)),
        (datetime(2026, 11, 21, 9, 0, tzinfo=NY), 1, datetime(2026, 11, 23, 9, 0, tzinfo=NY)),
    ],
)
def test_business_hours_count_only_working_hours(
    start: datetime, hours: int, expected: datetime
) -> None:
    assert CALENDAR.add_business_hours(start, hours) == expected


def test_period_is_the_discharge_day_and_the_next_29_days() -> None:
    end = CALENDAR.period_end(datetime(2026, 11, 20, 14, 0, tzinfo=NY), 30)
    assert end == datetime.combine(date(2026, 12, 19), time(23, 59, 59), tzinfo=NY)


def test_friday_discharge_home_plan() -> None:
    discharged = datetime(2026, 11, 20, 15, 30, tzinfo=NY)
    plan = build_plan(
        PlanRequest(discharged_at=discharged, protocol=LIBRARY.latest("discharge-home"))
    )
    due = {step.step_id: step.due_at for step in plan.steps}
    assert due == {
        "interactive_contact": datetime(2026, 11, 24, 23, 59, 59, tzinfo=NY),
        "medication_reconciliation": datetime(2026, 12, 4, 23, 59, 59, tzinfo=NY),
        "follow_up_visit": datetime(2026, 12, 4, 23, 59, 59, tzinfo=NY),
        # v2: three business days (Mon, Tue, Wed; Thanksgiving is the Thursday)
        "social_needs_screening": datetime(2026, 11, 25, 23, 59, 59, tzinfo=NY),
    }
    contact = next(s for s in plan.steps if s.step_id == "interactive_contact")
    assert [(e.level, e.role, e.channel, e.at) for e in contact.escalations] == [
        (1, "care_manager", "worklist", datetime(2026, 11, 24, 23, 59, 59, tzinfo=NY)),
        (2, "supervisor", "email", datetime(2026, 11, 25, 12, 0, tzinfo=NY)),
        (3, "medical_director", "page", datetime(2026, 11, 25, 23, 59, 59, tzinfo=NY)),
    ]
    assert plan.period_ends_at == datetime(2026, 12, 19, 23, 59, 59, tzinfo=NY)
    assert plan.calendar.startswith("us-federal/holidays-")


def test_high_risk_plan_has_the_7_day_visit_and_the_check_in_call() -> None:
    discharged = datetime(2026, 11, 25, 10, 0, tzinfo=NY)
    plan = build_plan(
        PlanRequest(
            discharged_at=discharged,
            protocol=LIBRARY.latest("discharge-home"),
            tier=RiskTier.HIGH,
        )
    )
    due = {step.step_id: step.due_at.date() for step in plan.steps}
    assert due == {
        "interactive_contact": date(2026, 11, 30),  # Thanksgiving skipped
        "medication_reconciliation": date(2026, 12, 2),
        "follow_up_visit": date(2026, 12, 2),
        "high_risk_check_in": date(2026, 12, 2),
        "social_needs_screening": date(2026, 12, 1),  # Fri, Mon, Tue
    }


def test_snooze_reschedule_keeps_the_limit_and_moves_the_ladder() -> None:
    rule = LIBRARY.latest("discharge-home").step("medication_reconciliation")
    discharged = datetime(2026, 11, 20, 14, 0, tzinfo=NY)
    until = datetime(2026, 12, 10, 12, 0, tzinfo=NY)
    snoozed = schedule_step(
        ScheduleStepRequest(rule=rule, anchor_at=discharged, due_override=until)
    )
    assert snoozed.due_at == until
    assert snoozed.limit_at == datetime(2026, 12, 19, 23, 59, 59, tzinfo=NY)
    assert snoozed.escalations[0].at == until
    assert snoozed.escalations[1].at == datetime(2026, 12, 10, 16, 0, tzinfo=NY)


def test_unknown_time_zone_is_a_non_retryable_error() -> None:
    request = PlanRequest(
        discharged_at=datetime(2026, 11, 25, 10, 0, tzinfo=NY),
        protocol=LIBRARY.latest("discharge-home"),
        calendar=CalendarConfig(timezone="Mars/Olympus_Mons"),
    )
    with pytest.raises(ApplicationError) as info:
        build_plan(request)
    assert info.value.non_retryable
