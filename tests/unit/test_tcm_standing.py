"""TCM standing on a clock the test owns: what is still possible while a window is open, and
the code only from the complexity recorded at the visit. Discharge Monday 2031-03-03 10:00
New York; contact deadline Wednesday 03-05 end of day; day 7 is 03-10, day 14 03-17."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from schemas.protocol import RiskTier, StepKind
from schemas.protocol_library import load_library
from schemas.risk import RiskAssessment
from schemas.transition import (
    Complexity,
    StepState,
    StepStatus,
    TransitionInput,
    TransitionStatus,
)
from store.tcm_standing import Standing, show_day, standing

NY = ZoneInfo("America/New_York")
LIBRARY = load_library(Path(__file__).resolve().parents[2] / "protocols")
DISCHARGE = datetime(2031, 3, 3, 10, 0, tzinfo=NY)
CONTACT_LIMIT = datetime(2031, 3, 5, 23, 59, 59, tzinfo=NY)


def step(step_id: str, day: int | None = None, complexity: Complexity | None = None) -> StepState:
    return StepState(
        step_id=step_id,
        title=step_id,
        kind=StepKind.HUMAN_TASK,
        owner_role="",
        status=StepStatus.COMPLETED if day is not None else StepStatus.OPEN,
        limit_at=CONTACT_LIMIT if step_id == "interactive_contact" else None,
        completed_at=DISCHARGE + timedelta(days=day, hours=1) if day is not None else None,
        complexity=complexity,
    )


def judge(
    now_day: float,
    contact: int | None = None,
    medrec: int | None = None,
    visit: int | None = None,
    complexity: Complexity | None = None,
    *,
    tier: RiskTier = RiskTier.HIGH,
) -> Standing:
    site = LIBRARY.site
    transition = TransitionInput(
        transition_id="t",
        encounter_key="",
        facility="X",
        discharged_at=DISCHARGE,
        protocol=LIBRARY.versions["discharge-home"][1],
        risk=RiskAssessment(lace=15, tier=tier),
        calendar=site.calendar_for("X"),
        policy=site.policy,
    )
    steps = {
        "interactive_contact": step("interactive_contact", contact),
        "medication_reconciliation": step("medication_reconciliation", medrec),
        "follow_up_visit": step("follow_up_visit", visit, complexity),
    }
    now = DISCHARGE + timedelta(days=now_day)
    return standing(transition, steps, TransitionStatus.ACTIVE, None, now)


def test_an_open_contact_window_is_in_progress_with_the_deadline_and_99496() -> None:
    found = judge(1)
    assert (found.state, found.code) == ("in progress", "in progress")
    assert found.reasons.startswith("contact due by Wed Mar 5;")
    assert found.reasons.endswith("; 99496 still possible")
    assert not found.contact_closed and not found.visit_7_closed


def test_after_day_7_without_a_visit_only_99495_is_still_possible() -> None:
    found = judge(9, contact=1, medrec=2)
    assert found.state == "in progress" and found.contact_closed and found.visit_7_closed
    assert found.reasons.endswith(
        f"visit by {show_day(DISCHARGE.date() + timedelta(14))} for 99495; 99495 still possible"
    )


def test_a_high_risk_visit_without_recorded_complexity_has_no_code() -> None:
    found = judge(20, contact=1, medrec=2, visit=5)
    assert (found.state, found.code) == ("not billable", "complexity not documented")


def test_the_recorded_complexity_gives_the_code_whatever_the_risk_tier() -> None:
    assert judge(20, 1, 2, 5, Complexity.HIGH, tier=RiskTier.STANDARD).code == "99496"
    assert judge(20, 1, 2, 5, Complexity.MODERATE).code == "99495"
    assert judge(20, 1, 2, 9, Complexity.HIGH).code == "99495"


def test_a_missed_contact_deadline_or_day_14_rules_it_out() -> None:
    assert judge(3).code == "not eligible"  # the deadline passed without contact
    late = judge(15, contact=1, medrec=2)
    assert (late.state, late.code, late.visit_14_closed) == ("not billable", "not eligible", True)
