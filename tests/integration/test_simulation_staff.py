"""The staff model's people on the real engine (time-skipping server, real intake and
PostgreSQL): the scheduler books the follow-up visit through the scheduling feed (SIU^S12),
the clinic reports the arrival (ADT^A04) or a no-show (SIU^S26) and the scheduler rebooks;
minutes per task shape the hours each role needs; escalations are taken first once the role
has seen them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from schemas.protocol import TcmElement
from schemas.protocol_library import load_library
from schemas.social_needs import HrsnDomain, ReferralOutcome
from schemas.transition import Complexity, StepState, StepStatus, TransitionState
from tests.integration.test_simulation import (
    ALWAYS_REACHED,
    CALENDAR,
    PROTOCOLS,
    ZONE,
    working_monday,
)
from workers.runtime.settings import Settings
from workers.simulation import engine
from workers.simulation.feed import FeedSpec, generate
from workers.simulation.report import summarize
from workers.simulation.staff import StaffModel

VISIT = "follow_up_visit"


def staff(**changes: Any) -> StaffModel:
    """ALWAYS_REACHED with the visit booked through the feed (3 business days after the
    discharge day) and `changes` laid over its fields."""
    data = ALWAYS_REACHED.model_dump(mode="json")
    data["steps"]["follow_up_visit"] = {"after_days": 1, "visit_after_days": 3}
    return StaffModel.model_validate({**data, **changes})


def home_discharges(count: int, *, high_risk: float = 0.0) -> FeedSpec:
    return FeedSpec(
        days=1,
        discharges_per_day=count,
        weekday_pattern=(1.0,) * 7,
        dispositions={"01": 1.0},
        high_risk_share=high_risk,
        a13_share=0.0,
    )


def visit(final: TransitionState) -> StepState:
    return next(s for s in final.steps if s.tcm_element == TcmElement.FACE_TO_FACE_VISIT)


@pytest.mark.timeout(240)
async def test_the_scheduler_books_the_visit_through_siu_and_the_arrival_completes_it(
    settings: Settings,
) -> None:
    # Five home discharges on a Monday. The scheduler books each visit on Tuesday (day 1)
    # for 10:00 three business days after the discharge day (Thursday), through an SIU^S12;
    # the clinic's A04 at 10:00 completes the visit, and the provider records moderate MDM.
    start = working_monday()
    feed = generate(home_discharges(5), start, ZONE)
    result = await engine.run(settings, PROTOCOLS, staff(), feed, start)
    summary = summarize(result)

    assert summary.invariant_problems == []
    assert result.staff.sent["booking:AA"] == 5 and result.staff.sent["arrival:AA"] == 5
    thursday = datetime.combine(start.date() + timedelta(days=3), datetime.min.time(), ZONE)
    for final in result.finals:
        step = visit(final)
        assert step.status == StepStatus.COMPLETED and step.completed_by == "feed"
        assert step.appointment_at == thursday.replace(hour=10)
        assert step.appointment_by == "feed" and step.appointment_id
        assert step.completed_at == thursday.replace(hour=10)
        assert step.complexity == Complexity.MODERATE
    projected = [
        s
        for row in result.projection
        for s in engine_steps(row["steps"])
        if s["tcm_element"] == TcmElement.FACE_TO_FACE_VISIT.value
    ]
    assert [s["appointment_at"] is not None for s in projected] == [True] * 5
    assert (summary.visit_7_days.met, summary.tcm_eligible.met) == (5, 5)


def engine_steps(raw: Any) -> list[dict[str, Any]]:
    return list(json.loads(raw) if isinstance(raw, str) else raw)


@pytest.mark.timeout(240)
async def test_a_missed_first_visit_reopens_the_step_which_escalates_and_is_rebooked_in_time(
    settings: Settings,
) -> None:
    # Five high-risk discharges on a Monday: the visit is due in 7 days. The scheduler books
    # it for day 7 at 10:00 and every patient misses that first visit (SIU^S26 at 11:00):
    # the appointment is cleared, the open step escalates at its due time, and the
    # scheduler rebooks (she books only a step without an appointment) for the next
    # business day, where every patient comes: the visit within 14 days after all.
    start = working_monday()
    model = staff(no_show_rate=[1.0, 0.0])
    model = model.model_copy(
        update={
            "steps": {
                **model.steps,
                "follow_up_visit": model.steps["follow_up_visit"].model_copy(
                    update={"high_risk_visit_after_days": 7, "visit_days": "days"}
                ),
            }
        }
    )
    feed = generate(home_discharges(5, high_risk=1.0), start, ZONE)
    result = await engine.run(settings, PROTOCOLS, model, feed, start)
    summary = summarize(result)

    assert summary.invariant_problems == []
    sent = result.staff.sent
    assert (sent["booking:AA"], sent["no-show:AA"], sent["arrival:AA"]) == (10, 5, 5)
    assert (summary.visits_booked, summary.no_shows) == (10, 5)
    escalated = {n["transition_id"] for n in result.notifications if n["step_id"] == VISIT}
    assert escalated == {f.transition_id for f in result.finals}
    for final in result.finals:
        step = visit(final)
        assert step.status == StepStatus.COMPLETED and step.appointment_id is not None
        assert step.appointment_id.endswith("02")  # the second booking
        assert step.appointment_at is not None and step.completed_at == step.appointment_at
        assert step.appointment_at.astimezone(ZONE).date() > start.date() + timedelta(days=7)
        assert step.complexity == Complexity.HIGH
    assert (summary.visit_7_days.met, summary.visit_14_days.met) == (0, 5)
    assert summary.tcm_99496 == 0 and summary.tcm_99495 == 5  # high MDM, but after day 7


def pharmacist_minutes(minutes: float) -> StaffModel:
    """One pharmacist 08:00-17:00 (540 minutes) whose reconciliation takes `minutes`."""
    data = ALWAYS_REACHED.model_dump(mode="json")
    data["roles"]["pharmacist"] = {"people": 1, "start": "08:00", "end": "17:00"}
    data["steps"]["medication_reconciliation"] = {"after_days": 1, "minutes": minutes}
    return StaffModel.model_validate(data)


@pytest.mark.timeout(240)
async def test_minutes_per_task_set_the_hours_a_role_needs_in_a_hand_checkable_day(
    settings: Settings,
) -> None:
    # Five discharges on a Monday; their reconciliations are the pharmacist's on Tuesday.
    # At 45 minutes each she needs 3.75 of her 9 hours: at 08:00 she starts two (the second
    # runs 30 minutes into 09:00), at 09:00 one (15 into 10:00), at 10:00 one (45: the
    # hour is full), at 11:00 the last. At 120 minutes each she needs 10 hours: one every
    # other hour (08, 10, 12, 14) and the fifth does not fit in her day (4 x 120 + 120 >
    # 540), so Tuesday is a day demand exceeded capacity.
    start = working_monday()
    tuesday = start.date() + timedelta(days=1)
    feed = generate(home_discharges(5), start, ZONE)
    quick = await engine.run(settings, PROTOCOLS, pharmacist_minutes(45), feed, start)
    slow = await engine.run(settings, PROTOCOLS, pharmacist_minutes(120), feed, start)

    load = quick.staff.load[tuesday]["pharmacist"]
    assert (load.done, load.waiting, load.minutes_done, load.minutes_available) == (5, 0, 225, 540)
    assert reconciled_hours(quick) == [8, 8, 9, 10, 11]
    load = slow.staff.load[tuesday]["pharmacist"]
    assert (load.done, load.waiting, load.minutes_done, load.minutes_needed) == (4, 1, 480, 600)
    assert reconciled_hours(slow)[:4] == [8, 10, 12, 14]
    days = {(w.day, w.role): (w.hours_needed, w.hours_available) for w in summarize(quick).workload}
    assert days[(tuesday, "pharmacist")] == (3.75, 9.0)
    summary = summarize(slow)
    days = {(w.day, w.role): (w.hours_needed, w.hours_available) for w in summary.workload}
    assert days[(tuesday, "pharmacist")] == (10.0, 9.0)
    assert summary.days_over_capacity >= 1 and summary.invariant_problems == []


def reconciled_hours(result: engine.RunResult) -> list[int]:
    """The local hours the reconciliations were done, in order."""
    done = [
        step.completed_at.astimezone(ZONE)
        for final in result.finals
        for step in final.steps
        if step.tcm_element == TcmElement.MEDICATION_RECONCILIATION
        and step.completed_at is not None
    ]
    return [at.hour for at in sorted(done)]


def first_shift_hour(model: StaffModel, role: str, after: datetime) -> datetime:
    """The first hour the simulation works `role` (on the hour, plus its offset) at or
    after `after`."""
    hour = after.astimezone(ZONE).replace(minute=0, second=0, microsecond=0)
    while True:
        instant = hour + engine.ACT_OFFSET
        if instant >= after and model.roles[role].on_duty(
            hour, CALENDAR.is_business_day(hour.date())
        ):
            return instant
        hour += timedelta(hours=1)


@pytest.mark.timeout(240)
async def test_an_escalated_step_is_taken_once_the_role_has_seen_it_not_on_its_usual_day(
    settings: Settings,
) -> None:
    # Five high-risk discharges: reconciliation is due in 7 days, but the pharmacist's day
    # for it is day 10. Its escalation at the due time brings it forward: she sees it 5 hours
    # later (reacts_within_hours: 5) and does it at her first working hour from then.
    start = working_monday()
    data = ALWAYS_REACHED.model_dump(mode="json")
    data["roles"]["pharmacist"]["reacts_within_hours"] = 5
    data["steps"]["medication_reconciliation"] = {"after_days": 10}
    model = StaffModel.model_validate(data)
    feed = generate(home_discharges(5, high_risk=1.0), start, ZONE)
    result = await engine.run(settings, PROTOCOLS, model, feed, start)

    assert summarize(result).invariant_problems == []
    raised = {
        n["transition_id"]: n["due_at"]
        for n in result.notifications
        if n["step_id"] == "medication_reconciliation" and n["level"] == 1
    }
    assert len(raised) == 5
    for final in result.finals:
        step = next(s for s in final.steps if s.step_id == "medication_reconciliation")
        assert step.completed_at is not None
        expected = first_shift_hour(
            model, "pharmacist", raised[final.transition_id] + timedelta(hours=5)
        )
        assert abs(step.completed_at - expected) < timedelta(minutes=1)
        assert step.completed_at.astimezone(ZONE).date() < start.date() + timedelta(days=10)


@pytest.mark.timeout(240)
async def test_a_need_found_at_screening_is_referred_to_a_resource_of_the_directory(
    settings: Settings,
) -> None:
    # Three home discharges whose patients all screen positive for food insecurity: the
    # care manager closes each food referral (close_referral) with the directory's food
    # resource, in the step's minutes (45), connected.
    start = working_monday()
    data = ALWAYS_REACHED.model_dump(mode="json")
    data["needs"] = {"food_insecurity": 1.0}
    data["steps"]["referral_food"] = {"minutes": 45}
    model = StaffModel.model_validate(data)
    feed = generate(home_discharges(3), start, ZONE)
    result = await engine.run(settings, PROTOCOLS, model, feed, start)

    assert summarize(result).invariant_problems == []
    food = [r.id for r in load_library(PROTOCOLS).resources_for(HrsnDomain.FOOD)]
    for final in result.finals:
        assert [(r.step_id, r.outcome) for r in final.referrals] == [
            ("referral_food", ReferralOutcome.CONNECTED)
        ]
        assert final.referrals[0].resource.id in food
        step = next(s for s in final.steps if s.step_id == "referral_food")
        assert step.status == StepStatus.COMPLETED
    assert result.staff.actions["referral"] == 3
    worked = [load.minutes_done for roles in result.staff.load.values() for load in roles.values()]
    assert sum(worked) >= 3 * 45


@pytest.mark.timeout(240)
async def test_a_care_manager_on_call_answers_a_page_out_of_hours_and_not_before_it(
    settings: Settings,
) -> None:
    # Two discharges whose patients never answer: the contact escalates to a page (level 3,
    # a business day after level 2). Care managers work 08:00-17:00 on business days and
    # answer pages out of hours: off shift they call only once the step is paged.
    start = working_monday()
    data = ALWAYS_REACHED.model_dump(mode="json")
    data["reach"] = [0.0]
    data["roles"]["care_manager"]["answers_pages_out_of_hours"] = True
    model = StaffModel.model_validate(data)
    feed = generate(home_discharges(2), start, ZONE)
    result = await engine.run(settings, PROTOCOLS, model, feed, start)

    assert summarize(result).invariant_problems == []
    paged = {
        n["transition_id"]: n["due_at"]
        for n in result.notifications
        if n["step_id"] == "interactive_contact" and n["channel"] == "page"
    }
    assert len(paged) == 2
    shift = model.roles["care_manager"]
    for final in result.finals:
        contact = next(s for s in final.steps if s.step_id == "interactive_contact")
        local = [a.at.astimezone(ZONE) for a in contact.attempts]
        off_shift = [
            at for at in local if not shift.on_duty(at, CALENDAR.is_business_day(at.date()))
        ]
        assert off_shift, "no call out of hours"
        assert min(off_shift) >= paged[final.transition_id]
