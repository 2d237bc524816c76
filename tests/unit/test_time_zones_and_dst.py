"""Hour deadlines are elapsed time, days follow the local calendar, across both daylight
saving changes; each facility is planned in its own zone (site.yaml `facilities`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from activities.business_calendar import BusinessCalendar
from activities.planning import build_plan
from ingest import er7, mapping
from schemas.protocol import DueUnit, RiskTier
from schemas.protocol_library import load_library
from schemas.site import CalendarConfig, FacilityCalendar, SiteConfig
from schemas.transition import PlanRequest

NY = ZoneInfo("America/New_York")
HONOLULU = ZoneInfo("Pacific/Honolulu")
LIBRARY = load_library(Path(__file__).resolve().parents[2] / "protocols")
CALENDAR = BusinessCalendar(CalendarConfig(timezone="America/New_York"))
# An Eastern site with one facility in Hawaii (which keeps no daylight saving time).
SITE = SiteConfig(
    facilities={"QUEENS": FacilityCalendar(timezone="Pacific/Honolulu")},
)


def elapsed(start: datetime, end: datetime) -> timedelta:
    """Real time between two instants (Python subtracts wall clocks within one zone)."""
    return end.astimezone(UTC) - start.astimezone(UTC)


def discharge(facility: str, disposition: str, admitted: str, discharged: str) -> bytes:
    """An A03 whose times carry no offset (read in the facility's zone)."""
    pv1 = ["PV1", "1", "I", f"W^1^A^{facility}"] + [""] * 15 + [f"V1^^^{facility}^VN"]
    pv1 += [""] * (36 - len(pv1)) + [disposition]
    pv1 += [""] * (44 - len(pv1)) + [admitted, discharged]
    return (
        f"MSH|^~\\&|EPIC|{facility}|CB|CB|{discharged}||ADT^A03^ADT_A03|C1|P|2.5.1\r"
        f"EVN|A03|{discharged}\r"
        f"PID|1||77^^^{facility}^MR||TEST^PAT\r" + "|".join(pv1) + "\r"
    ).encode()


def plan_of(protocol: str, discharged: datetime, calendar: CalendarConfig) -> dict[str, datetime]:
    plan = build_plan(
        PlanRequest(
            discharged_at=discharged,
            protocol=LIBRARY.latest(protocol),
            tier=RiskTier.STANDARD,
            calendar=calendar,
        )
    )
    return {step.step_id: step.due_at for step in plan.steps}


@pytest.mark.parametrize(
    "discharged",
    [
        datetime(2027, 11, 6, 10, 0, tzinfo=NY),  # Saturday before the November change
        datetime(2027, 3, 13, 10, 0, tzinfo=NY),  # Saturday before the March change
        datetime(2027, 11, 7, 1, 30, fold=0, tzinfo=NY),  # inside the repeated hour (EDT)
        datetime(2027, 11, 7, 1, 30, fold=1, tzinfo=NY),  # the same wall time, EST
    ],
)
@pytest.mark.parametrize("hours", [24, 48])
def test_hour_deadlines_are_exact_elapsed_hours_over_daylight_saving(
    discharged: datetime, hours: int
) -> None:
    due = CALENDAR.offset(discharged, DueUnit.HOURS, hours)
    assert elapsed(discharged, due) == timedelta(hours=hours)


def test_home_health_referral_and_start_of_care_over_the_november_weekend() -> None:
    """Saturday 10:00 EDT discharge: referral Sunday 09:00 EST (24 h), start of care is
    48 h after the return home, Monday 09:00 EST, inside 42 CFR 484.55(a)(1)."""
    discharged = datetime(2027, 11, 6, 10, 0, tzinfo=NY)
    due = plan_of("discharge-home-health", discharged, CalendarConfig())
    referral = due["home_health_referral"]
    assert referral.astimezone(NY).replace(tzinfo=None) == datetime(2027, 11, 7, 9, 0)
    assert elapsed(discharged, referral) == timedelta(hours=24)


def test_start_of_care_from_an_hl7_time_without_offset_is_48_elapsed_hours() -> None:
    raw = discharge("GENHOSP", "06", "20271101080000", "20271106100000")
    event = mapping.to_event(er7.parse(raw), NY)
    assert event.discharged_at is not None and event.discharge_disposition == "06"
    calendar = BusinessCalendar(CalendarConfig())
    start_of_care = calendar.offset(event.discharged_at, DueUnit.HOURS, 48)
    assert start_of_care.astimezone(NY).replace(tzinfo=None) == datetime(2027, 11, 8, 9, 0)
    assert elapsed(event.discharged_at, start_of_care) == timedelta(hours=48)


@pytest.mark.parametrize(
    ("due", "expected"),
    [
        # Friday 23:59 EDT deadline, 4 working hours: Monday 12:00 EST (after the change).
        (datetime(2027, 11, 5, 23, 59, 59, tzinfo=NY), datetime(2027, 11, 8, 12, 0)),
        # Friday 23:59 EST deadline, 4 working hours: Monday 12:00 EDT.
        (datetime(2027, 3, 12, 23, 59, 59, tzinfo=NY), datetime(2027, 3, 15, 12, 0)),
        # Friday 15:00: 2 hours Friday, 2 hours Monday morning, over the change.
        (datetime(2027, 11, 5, 15, 0, tzinfo=NY), datetime(2027, 11, 8, 10, 0)),
    ],
)
def test_business_hours_stay_on_the_local_working_day_across_daylight_saving(
    due: datetime, expected: datetime
) -> None:
    assert CALENDAR.offset(due, DueUnit.BUSINESS_HOURS, 4).replace(tzinfo=None) == expected


@pytest.mark.parametrize(
    ("discharged", "expected"),
    [
        (datetime(2027, 11, 5, 12, 0, tzinfo=NY), date(2027, 11, 9)),  # Friday -> Tuesday
        (datetime(2027, 3, 12, 12, 0, tzinfo=NY), date(2027, 3, 16)),
    ],
)
def test_business_days_end_at_local_midnight_after_a_daylight_saving_weekend(
    discharged: datetime, expected: date
) -> None:
    due = CALENDAR.offset(discharged, DueUnit.BUSINESS_DAYS, 2)
    assert due.astimezone(NY).date() == expected
    assert due.astimezone(NY).time() == time(23, 59, 59)


def test_a_honolulu_facility_on_an_eastern_site_is_planned_in_honolulu() -> None:
    """Thursday 23:30 HST is Friday 04:30 in New York: the contact is due Monday 23:59 HST
    (2 business days after Thursday), not Tuesday."""
    discharged = datetime(2027, 1, 7, 23, 30, tzinfo=HONOLULU)
    calendar = SITE.calendar_for("QUEENS")
    due = plan_of("discharge-home", discharged, calendar)["interactive_contact"]
    assert due.astimezone(HONOLULU).replace(tzinfo=None) == datetime(2027, 1, 11, 23, 59, 59)
    eastern = plan_of("discharge-home", discharged, SITE.calendar)["interactive_contact"]
    assert eastern.astimezone(NY).date() == date(2027, 1, 12)  # what the site zone would say


def test_hl7_times_without_an_offset_are_read_in_the_facility_zone() -> None:
    message = er7.parse(discharge("QUEENS", "01", "20270105080000", "20270107233000"))
    event = mapping.to_event(message, SITE.zone_for(mapping.header(message).sending_facility))
    assert event.discharged_at == datetime(2027, 1, 7, 23, 30, tzinfo=HONOLULU)


def test_an_unlisted_facility_uses_the_site_calendar_and_says_so() -> None:
    assert SITE.calendar_for("GENHOSP") == SITE.calendar
    assert SITE.zone_for("GENHOSP") == NY
    note = SITE.facility_note("GENHOSP")
    assert note is not None and "GENHOSP" in note and "America/New_York" in note
    assert SITE.facility_note("QUEENS") is None


def test_a_facility_keeps_the_site_closures_unless_it_lists_its_own() -> None:
    closure = date(2027, 1, 8)
    site = SiteConfig(
        calendar=CalendarConfig(extra_closures=(closure,)),
        facilities={
            "QUEENS": FacilityCalendar(timezone="Pacific/Honolulu"),
            "MAUI": FacilityCalendar(timezone="Pacific/Honolulu", extra_closures=()),
        },
    )
    assert site.calendar_for("QUEENS").extra_closures == (closure,)
    assert site.calendar_for("MAUI").extra_closures == ()
    assert site.calendar_for("MAUI").business_day_start == site.calendar.business_day_start


def test_an_unknown_facility_time_zone_is_refused_at_load_with_its_place() -> None:
    with pytest.raises(ValidationError, match=r"facilities\.QUEENS: unknown time zone"):
        SiteConfig(facilities={"QUEENS": FacilityCalendar(timezone="Pacific/Atlantis")})
