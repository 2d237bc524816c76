"""`carebridge simulate` on the real worker, intake and PostgreSQL, on the time-skipping test
server: a hand-computed case (staff who reach every patient on the first call, the same
business day or the next), a soak of about 60 discharges over 35 simulated days with the
run's invariants, and the command itself with --compare and --json."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from activities.business_calendar import BusinessCalendar
from schemas.protocol import TcmElement
from schemas.protocol_library import load_library
from schemas.transition import StepStatus, TransitionStatus
from tests.integration.conftest import run_cli, simulate_env
from workers.runtime.settings import Settings
from workers.simulation import engine
from workers.simulation.feed import FeedSpec, generate
from workers.simulation.invariants import problems
from workers.simulation.report import summarize
from workers.simulation.session import first_day
from workers.simulation.staff import StaffModel, load_staff

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = ROOT / "protocols"
EXAMPLE_STAFF = ROOT / "docs" / "simulation" / "staff.yaml"
CONTACT_1_DAY = ROOT / "docs" / "simulation" / "contact-1-business-day"
SITE = load_library(PROTOCOLS).site
CALENDAR = BusinessCalendar(SITE.calendar)
ZONE = SITE.calendar_zone()

ALWAYS_REACHED = StaffModel.model_validate(
    {
        "roles": {
            "care_manager": {"people": 2, "start": "08:00", "end": "17:00", "per_hour": 10},
            "pharmacist": {"people": 1, "start": "08:00", "end": "17:00", "per_hour": 10},
            "scheduler": {"people": 1, "start": "08:00", "end": "17:00", "per_hour": 10},
        },
        "reach": [1.0],
        "steps": {
            "medication_reconciliation": {"after_days": 1},
            "follow_up_visit": {"after_days": 3},
        },
    }
)


def working_monday() -> datetime:
    """Midnight of the first Monday after today that opens three business days (no holiday
    Monday to Wednesday): the hand-computed case needs them."""
    start = first_day(None, ZONE)
    while not all(CALENDAR.is_business_day(start.date() + timedelta(days=n)) for n in range(3)):
        start += timedelta(days=7)
    return start


@pytest.mark.timeout(180)
async def test_staff_who_reach_everyone_on_the_first_call_contact_all_in_time_with_no_escalation(
    settings: Settings,
) -> None:
    # Ten home discharges on one Monday, 10:00-19:00, standard risk. Care managers call from
    # 08:00 to 17:00 and every first call reaches the patient: each contact is made that day
    # or the next business day (inside 2 business days), the screening with it; medicines are
    # reconciled on day 1 and the visit is on day 3 (inside 7 days), before any deadline.
    start = working_monday()
    spec = FeedSpec(
        days=1,
        discharges_per_day=10,
        weekday_pattern=(1.0,) * 7,
        dispositions={"01": 1.0},
        high_risk_share=0.0,
        a13_share=0.0,
    )
    feed = generate(spec, start, ZONE)
    assert len(feed) == 10

    result = await engine.run(settings, PROTOCOLS, ALWAYS_REACHED, feed, start)
    summary = summarize(result)

    assert summary.discharges == 10 and summary.cancelled == 0
    assert (summary.contact_2_business_days.met, summary.contact_2_business_days.of) == (10, 10)
    assert summary.escalations_by_level == {} and summary.pages == 0
    assert summary.calls == 10  # one call each, every one answered
    assert (summary.visit_7_days.met, summary.visit_14_days.met) == (10, 10)
    assert (summary.tcm_eligible.met, summary.tcm_99495, summary.tcm_99496) == (10, 10, 0)
    next_business_day = CALENDAR.add_business_days(start.date(), 1)
    for final in result.finals:
        contact = next(s for s in final.steps if s.tcm_element == TcmElement.INTERACTIVE_CONTACT)
        assert contact.status == StepStatus.COMPLETED and contact.completed_at is not None
        assert contact.completed_at.astimezone(ZONE).date() <= next_business_day
        assert [a.result.value for a in contact.attempts] == ["reached"]
    assert summary.invariant_problems == []


@pytest.mark.timeout(180)
async def test_an_overloaded_team_does_no_more_than_its_capacity_and_the_rest_waits(
    settings: Settings,
) -> None:
    # One care manager making one call an hour (9 a day) for ten discharges on a Monday:
    # the calls and screenings needed exceed what she can do, so work waits for the next
    # hours and days, and some contacts come late.
    start = working_monday()
    spec = FeedSpec(days=1, discharges_per_day=10, weekday_pattern=(1.0,) * 7, a13_share=0.0)
    one = ALWAYS_REACHED.model_copy(
        update={
            "roles": {
                **ALWAYS_REACHED.roles,
                "care_manager": ALWAYS_REACHED.roles["care_manager"].model_copy(
                    update={"people": 1, "per_hour": 1}
                ),
            }
        }
    )
    result = await engine.run(settings, PROTOCOLS, one, generate(spec, start, ZONE), start)

    summary = summarize(result)
    tuesday = result.staff.load[start.date() + timedelta(days=1)]["care_manager"]
    # per_hour 1: an hour a task, so nine tasks in her nine hours (540 minutes)
    assert (tuesday.minutes_available, tuesday.done, tuesday.minutes_done) == (540, 9, 540)
    assert tuesday.needed > 9 and tuesday.minutes_needed > 540
    assert summary.days_over_capacity >= 1
    assert all(
        load.minutes_done <= load.minutes_available
        for roles in result.staff.load.values()
        for load in roles.values()
    )
    assert summary.invariant_problems == []


@pytest.mark.timeout(240)
async def test_a_simulated_month_of_discharges_keeps_every_invariant(settings: Settings) -> None:
    # About 60 discharges in 5 days (home, home health, AMA; some high risk; some cancelled
    # by an A13), run to the end of the last one's 30-day period: 35 simulated days.
    start = first_day(None, ZONE)
    spec = FeedSpec(days=5, discharges_per_day=12, a13_share=0.05, seed=3)
    feed = generate(spec, start, ZONE)
    cancels = sum(1 for m in feed if m.trigger == "A13")
    result = await engine.run(settings, PROTOCOLS, load_staff(EXAMPLE_STAFF), feed, start)

    assert problems(result) == []
    assert len(result.finals) == len(feed) - cancels >= 50
    last_end = max(f.period_ends_at for f in result.finals if f.period_ends_at)
    assert last_end - start > timedelta(days=33)  # day 5 + 30-day period: 34 local days
    cancelled = [f for f in result.finals if f.status == TransitionStatus.CANCELLED]
    assert cancels > 0 and len(cancelled) == cancels
    summary = summarize(result)
    assert summary.calls == sum(
        len(step.attempts) for final in result.finals for step in final.steps
    )


async def test_simulate_compares_two_protocol_sets_in_json(
    settings: Settings, tmp_path: Path
) -> None:
    env = simulate_env(settings, tmp_path)
    answer = await run_cli(
        env,
        "simulate",
        "--days=1",
        "--discharges-per-day=3",
        f"--staff={EXAMPLE_STAFF}",
        f"--protocols={PROTOCOLS}",
        f"--compare={CONTACT_1_DAY}",
        "--json",
    )
    assert answer.exit_code == 0, answer.output
    runs = json.loads(answer.output)["runs"]
    assert [run["protocols"] for run in runs] == [str(PROTOCOLS), str(CONTACT_1_DAY)]
    assert runs[0]["discharges"] == runs[1]["discharges"] > 0  # the same feed for both
    assert all(run["invariant_problems"] == [] for run in runs)
    assert all(day["hours_available"] >= 0 for day in runs[0]["workload"])


async def test_simulate_refuses_a_broken_staff_model_in_a_sentence(tmp_path: Path) -> None:
    staff = tmp_path / "staff.yaml"
    staff.write_text("roles:\n  care_manager: {people: 2, start: '17:00', end: '08:00'}\n")
    answer = await run_cli({}, "simulate", f"--staff={staff}")
    assert answer.exit_code == 1
    assert "a shift's start must be before its end" in answer.output
    assert "Traceback" not in answer.output


def test_the_first_simulated_day_is_after_today() -> None:
    now = datetime(2031, 3, 12, 9, 30, tzinfo=ZONE)  # a Wednesday
    assert first_day(None, ZONE, now).date().isoformat() == "2031-03-17"  # the next Monday
    with pytest.raises(Exception, match="must be after today"):
        first_day(now.date(), ZONE, now)
