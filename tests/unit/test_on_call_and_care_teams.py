"""site.yaml's on-call table (who is on duty for a role at an instant, in a zone) and its
care teams (a transition's team from the roster's practice, a PCP, a default, the facility),
on instants and inputs the tests own."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from schemas.site import CareTeams, NotificationConfig, Shift, SiteConfig, Weekday

NEW_YORK = ZoneInfo("America/New_York")
HONOLULU = ZoneInfo("Pacific/Honolulu")
ON_CALL = NotificationConfig(
    on_call={
        "supervisor": (
            Shift(name="Day", days=(Weekday.MON, Weekday.TUE), start=time(8), end=time(17)),
            Shift(name="Night", days=(Weekday.MON,), start=time(17), end=time(8)),
            Shift(name="Riverside only", team="riverside"),
            Shift(name="Anyone else"),
        )
    }
)


def at(text: str, zone: ZoneInfo = NEW_YORK) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def on_duty(when: datetime, team: str | None = None, zone: ZoneInfo = NEW_YORK) -> str | None:
    found = ON_CALL.on_duty("supervisor", when, zone, team)
    return found.name if found else None


def test_a_day_shift_covers_its_weekdays_between_start_and_end() -> None:
    assert on_duty(at("2027-03-01 08:00")) == "Day"  # Monday, at the start
    assert on_duty(at("2027-03-02 16:59")) == "Day"  # Tuesday


def test_a_night_shift_runs_past_midnight_into_the_next_day() -> None:
    assert on_duty(at("2027-03-01 23:30")) == "Night"  # Monday night
    assert on_duty(at("2027-03-02 07:59")) == "Night"  # still Monday's shift, Tuesday morning
    assert on_duty(at("2027-03-03 07:59")) == "Anyone else"  # Tuesday had no night shift


def test_a_shift_for_one_team_names_nobody_for_another() -> None:
    saturday = at("2027-03-06 10:00")
    assert on_duty(saturday, team="riverside") == "Riverside only"
    assert on_duty(saturday, team="hilltop") == "Anyone else"


def test_the_instant_is_read_in_the_zone_given() -> None:
    instant = at("2027-03-01 09:00")  # Monday 09:00 in New York is Monday 04:00 in Honolulu
    assert on_duty(instant) == "Day"
    assert on_duty(instant, zone=HONOLULU) == "Anyone else"  # before the day shift, no night
    assert on_duty(at("2027-03-01 09:00", HONOLULU), zone=HONOLULU) == "Day"


def test_a_role_without_a_table_has_nobody_on_duty() -> None:
    assert ON_CALL.on_duty("medical_director", at("2027-03-01 09:00"), NEW_YORK) is None


def test_shift_days_are_read_in_any_case_and_unknown_days_are_refused() -> None:
    site = SiteConfig.model_validate(
        {"notifications": {"on_call": {"supervisor": [{"name": "A", "days": ["Mon", "TUE"]}]}}}
    )
    assert site.notifications.on_call["supervisor"][0].days == (Weekday.MON, Weekday.TUE)
    with pytest.raises(ValidationError):
        SiteConfig.model_validate(
            {"notifications": {"on_call": {"supervisor": [{"name": "A", "days": ["someday"]}]}}}
        )


TEAMS = CareTeams(practices={"RIVER-FM": "riverside"}, pcps={"D77": "hilltop"})


def test_the_rosters_practice_decides_the_team_listed_or_not() -> None:
    assert TEAMS.team_for(practice="RIVER-FM", pcp_ids=["D77"], facility="GEN") == (
        "riverside",
        "roster practice",
    )
    assert TEAMS.team_for(practice="LAKESIDE", pcp_ids=[], facility="GEN") == (
        "LAKESIDE",
        "roster practice",
    )


def test_without_a_practice_the_first_listed_pcp_then_the_default_then_the_facility() -> None:
    assert TEAMS.team_for(practice="", pcp_ids=["X1", "D77"], facility="GEN") == (
        "hilltop",
        "pcp",
    )
    assert TEAMS.team_for(practice="", pcp_ids=["X1"], facility="GEN") == ("GEN", "facility")
    fallback = CareTeams(default="central")
    assert fallback.team_for(practice="", pcp_ids=[], facility="GEN") == (
        "central",
        "site default",
    )


def test_numeric_pcp_ids_in_yaml_are_text() -> None:
    site = SiteConfig.model_validate({"care_teams": {"pcps": {1234567893: "hilltop"}}})
    assert site.care_teams.team_for(practice="", pcp_ids=["1234567893"], facility="F") == (
        "hilltop",
        "pcp",
    )
