"""The staff model's people on the real engine (time-skipping server, real intake and
PostgreSQL): the scheduler books the follow-up visit through the scheduling feed (SIU^S12),
the clinic reports the arrival (ADT^A04) or a no-show (SIU^S26) and the scheduler rebooks;
minutes per task shape the hours each role needs; escalations are taken first once the role
has seen them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from schemas.protocol import TcmElement
from schemas.transition import Complexity, StepState, StepStatus, TransitionState
from tests.integration.test_simulation import (
    ALWAYS_REACHED,
    PROTOCOLS,
    ZONE,
    working_monday,
)
from workers.runtime.settings import Settings
from workers.simulation import engine
from workers.simulation.feed import FeedSpec, generate
from workers.simulation.report import summarize
from workers.simulation.staff import StaffModel


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
    import json

    return list(json.loads(raw) if isinstance(raw, str) else raw)
