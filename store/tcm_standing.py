"""Where one transition stands for TCM billing on a given instant: billable with a code,
not billable (and why), or in progress with what is still possible.

Complexity is the billing provider's medical decision making recorded at the visit (the
completion's `complexity`, or a supervisor's correction): never inferred from the LACE tier;
unrecorded is "complexity not documented", with no code. A transition whose contact window or
visit window is still open, and that nothing already rules out, is "in progress": it is not
a failure, and no percentage counts it until its window closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from schemas.outcome import (
    COMPLEXITY_NOT_DOCUMENTED,
    contact_requirement_met,
    day_after_discharge,
    tcm_outcome,
)
from schemas.protocol import TcmElement
from schemas.transition import (
    Complexity,
    StepState,
    StepStatus,
    TransitionInput,
    TransitionStatus,
)

State = Literal["billable", "in progress", "not billable", "not applicable"]
IN_PROGRESS = "in progress"
NOT_ELIGIBLE = "not eligible"
NOT_APPLICABLE = "not applicable"
BUNDLED_IN_APCM = "bundled in APCM"
APCM_REASON = (
    "the practice bills APCM (G0556-G0558) for this patient: TCM is not billable in that "
    "month (CMS 2025)"
)


@dataclass(frozen=True)
class Standing:
    state: State
    code: str  # 99495, 99496, bundled in APCM, complexity not documented, in progress, ...
    reasons: str
    contact_closed: bool  # contact made in time, or its deadline has passed
    visit_7_closed: bool  # a visit recorded, or day 7 has ended
    visit_14_closed: bool  # a visit recorded, or day 14 has ended


def show_day(day: date) -> str:
    """'Thu Dec 3': how a billing office reads a deadline."""
    return f"{day:%a %b} {day.day}"


def _end_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


def _done(step: StepState | None) -> datetime | None:
    return step.completed_at if step and step.status == StepStatus.COMPLETED else None


def _code(complexity: Complexity | None, visit_day: int) -> tuple[str, str]:
    if complexity is None:
        return COMPLEXITY_NOT_DOCUMENTED, (
            f"visit on day {visit_day}: the billing provider's medical decision making is "
            "not recorded (complete or correct the visit with its complexity)"
        )
    if complexity == Complexity.HIGH and visit_day <= 7:
        return "99496", f"high complexity, visit on day {visit_day} (<= 7)"
    if complexity == Complexity.HIGH:
        return "99495", f"high complexity but visit on day {visit_day} (> 7)"
    return "99495", f"moderate complexity, visit on day {visit_day} (<= 14)"


def standing(
    transition: TransitionInput,
    steps: dict[str, StepState],
    status: TransitionStatus,
    readmitted_at: datetime | None,
    now: datetime,
    *,
    apcm: bool = False,
) -> Standing:
    """The TCM standing of a transition at `now` (see the module's docstring)."""
    outcome = tcm_outcome(transition, steps, status, readmitted_at)
    if not outcome.applicable:
        return Standing("not applicable", NOT_APPLICABLE, "; ".join(outcome.reasons), *[False] * 3)
    zone = transition.calendar.zone()
    by_element = {
        rule.tcm_element: steps.get(rule.id)
        for rule in transition.protocol.steps
        if rule.tcm_element and rule.id in steps
    }
    contact = by_element.get(TcmElement.INTERACTIVE_CONTACT)
    visit = by_element.get(TcmElement.FACE_TO_FACE_VISIT)
    medrec = by_element.get(TcmElement.MEDICATION_RECONCILIATION)
    discharged_on = transition.discharged_at.astimezone(zone).date()
    day_7, day_14 = discharged_on + timedelta(days=7), discharged_on + timedelta(days=14)
    today = now.astimezone(zone).date()
    contact_ok = contact_requirement_met(transition, contact)[0] if contact else False
    deadline = (contact.limit_at or contact.due_at) if contact else None
    visit_at, medrec_at = _done(visit), _done(medrec)
    visit_day = day_after_discharge(visit_at, transition.discharged_at, zone) if visit_at else None
    contact_closed = contact_ok or deadline is None or now > deadline
    windows = (
        contact_closed,
        visit_at is not None or now >= _end_of(day_7, zone),
        visit_at is not None or now >= _end_of(day_14, zone),
    )
    if outcome.eligible and visit_day is not None:
        if apcm:
            return Standing("not billable", BUNDLED_IN_APCM, APCM_REASON, *windows)
        code, why = _code(visit.complexity if visit else None, visit_day)
        state: State = "billable" if code != COMPLEXITY_NOT_DOCUMENTED else "not billable"
        return Standing(state, code, "; ".join([*outcome.reasons[:-1], why]), *windows)
    if apcm:
        return Standing("not billable", BUNDLED_IN_APCM, APCM_REASON, *windows)
    ruled_out = (
        status != TransitionStatus.ACTIVE
        or (readmitted_at is not None and not transition.policy.tcm_after_readmission)
        or (not contact_ok and (contact is None or contact.is_terminal or contact_closed))
        or (visit_day is not None and visit_day > 14)
        or (visit_at is None and now >= _end_of(day_14, zone))
        or (medrec_at is None and visit_at is not None and today > visit_at.astimezone(zone).date())
        or (
            medrec_at is not None
            and visit_at is not None
            and medrec_at.astimezone(zone).date() > visit_at.astimezone(zone).date()
        )
    )
    if ruled_out:
        return Standing("not billable", NOT_ELIGIBLE, "; ".join(outcome.reasons), *windows)
    possible: list[str] = []
    if not contact_ok and deadline is not None:
        possible.append(f"contact due by {show_day(deadline.astimezone(zone).date())}")
    if medrec_at is None:
        possible.append("medication reconciliation due by the visit")
    if visit_at is None:
        if today <= day_7:
            possible.append(
                f"visit by {show_day(day_7)} for 99496 (high complexity) "
                f"or by {show_day(day_14)} for 99495"
            )
        else:
            possible.append(f"visit by {show_day(day_14)} for 99495")
    high_possible = (visit_at is None and today <= day_7) or (
        visit_day is not None
        and visit_day <= 7
        and visit is not None
        and visit.complexity in (None, Complexity.HIGH)
    )
    possible.append("99496 still possible" if high_possible else "99495 still possible")
    return Standing("in progress", IN_PROGRESS, "; ".join(possible), *windows)
