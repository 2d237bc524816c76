"""The 30-day arithmetic: CMS TCM eligibility (99496 / 99495 / not eligible, and why), the
HEDIS TRC components carebridge can see, and the day after discharge that TCM's visit, TRC's
windows and the readmission report count in. Pure and deterministic: the workflow's closing
outcome (inside the sandbox) and the reports (store/reports.py) call the same functions."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from schemas.protocol import TcmElement
from schemas.transition import (
    AttemptResult,
    Complexity,
    StepState,
    StepStatus,
    TcmOutcome,
    TransitionInput,
    TransitionOutcome,
    TransitionStatus,
    TrcOutcome,
)

COMPLEXITY_NOT_DOCUMENTED = "complexity not documented"


def _element(
    input: TransitionInput, steps: dict[str, StepState], element: TcmElement
) -> StepState | None:
    for rule in input.protocol.steps:
        if rule.tcm_element == element and rule.id in steps:
            return steps[rule.id]
    return None


def _completed(step: StepState | None) -> datetime | None:
    if step is not None and step.status == StepStatus.COMPLETED:
        return step.completed_at
    return None


def contact_requirement_met(input: TransitionInput, step: StepState | None) -> tuple[bool, str]:
    """Contact made by the deadline, or enough documented attempts inside the window."""
    if step is None:
        return False, "the protocol has no interactive-contact step"
    deadline = step.limit_at or step.due_at
    done = _completed(step)
    if done is not None and (deadline is None or done <= deadline):
        return True, "interactive contact made in time"
    rule = input.protocol.step(step.step_id)
    timely = [a for a in step.attempts if deadline is None or a.at <= deadline]
    unanswered = [a for a in timely if a.result != AttemptResult.REACHED]
    if rule.min_attempts and len(unanswered) >= rule.min_attempts:
        return True, f"{len(unanswered)} documented contact attempts within the deadline"
    if step.missed_before_arrival and deadline is not None:
        arrived = input.received_at
        if arrived is None or deadline <= arrived:
            zone = input.calendar.zone()
            when = f" on {_local_date(arrived, zone).isoformat()}" if arrived else ""
            return False, (
                f"the interactive-contact deadline {_local_date(deadline, zone).isoformat()} "
                f"had passed before the discharge arrived{when}"
            )
    return False, "no interactive contact (or documented attempts) within 2 business days"


def tcm_outcome(
    input: TransitionInput,
    steps: dict[str, StepState],
    status: TransitionStatus,
    readmitted_at: datetime | None,
) -> TcmOutcome:
    if not input.protocol.tcm:
        return TcmOutcome(applicable=False, reasons=[f"protocol {input.protocol.id} is not TCM"])
    zone = ZoneInfo(input.calendar.timezone)
    reasons: list[str] = []
    if status == TransitionStatus.DECEASED:
        reasons.append("the patient died before the end of the period")
    if status == TransitionStatus.CANCELLED:
        reasons.append("the discharge was cancelled")
    if readmitted_at is not None and not input.policy.tcm_after_readmission:
        reasons.append("readmitted within the period (site policy)")
    contact_ok, contact_reason = contact_requirement_met(
        input, _element(input, steps, TcmElement.INTERACTIVE_CONTACT)
    )
    if not contact_ok:
        reasons.append(contact_reason)
    visit = _element(input, steps, TcmElement.FACE_TO_FACE_VISIT)
    visit_at = _completed(visit)
    medrec_at = _completed(_element(input, steps, TcmElement.MEDICATION_RECONCILIATION))
    visit_day: int | None = None
    if visit_at is None:
        reasons.append("no face-to-face visit")
    else:
        visit_day = day_after_discharge(visit_at, input.discharged_at, zone)
        if visit_day > 14:
            reasons.append(f"face-to-face visit on day {visit_day}, after day 14")
    if medrec_at is None:
        reasons.append("no medication reconciliation")
    elif visit_at is not None and _local_date(medrec_at, zone) > _local_date(visit_at, zone):
        reasons.append("medication reconciliation after the face-to-face visit")
    if reasons or visit_day is None:
        return TcmOutcome(applicable=True, eligible=False, reasons=reasons)

    # The code follows the billing provider's medical decision making recorded at the visit,
    # never the readmission risk: unrecorded, the requirements are met but no code is known.
    complexity = visit.complexity if visit else None
    if complexity is None:
        why = f"visit on day {visit_day}: {COMPLEXITY_NOT_DOCUMENTED} (99495 or 99496)"
        return TcmOutcome(applicable=True, eligible=True, code=None, reasons=[contact_reason, why])
    if complexity == Complexity.HIGH and visit_day <= 7:
        code, why = "99496", f"high complexity, visit on day {visit_day} (<= 7)"
    elif complexity == Complexity.HIGH:
        code, why = "99495", f"high complexity but visit on day {visit_day} (> 7)"
    else:
        code, why = "99495", f"moderate complexity, visit on day {visit_day} (<= 14)"
    return TcmOutcome(applicable=True, eligible=True, code=code, reasons=[contact_reason, why])


def _local_date(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def day_after_discharge(instant: datetime, discharged_at: datetime, zone: ZoneInfo) -> int:
    """Days from the discharge to `instant` on the facility's local calendar; the discharge
    day is day 0."""
    return (_local_date(instant, zone) - _local_date(discharged_at, zone)).days


def trc_outcome(input: TransitionInput, steps: dict[str, StepState]) -> TrcOutcome:
    zone = ZoneInfo(input.calendar.timezone)

    def within(instant: datetime | None, first: int, last: int) -> bool:
        if instant is None:
            return False
        return first <= day_after_discharge(instant, input.discharged_at, zone) <= last

    contact = _element(input, steps, TcmElement.INTERACTIVE_CONTACT)
    visit = _element(input, steps, TcmElement.FACE_TO_FACE_VISIT)
    info = _completed(_element(input, steps, TcmElement.DISCHARGE_INFORMATION))
    medrec = _completed(_element(input, steps, TcmElement.MEDICATION_RECONCILIATION))
    engaged = within(_completed(contact), 1, 30) or within(_completed(visit), 1, 30)
    return TrcOutcome(
        discharge_information=within(info, 0, input.policy.trc_discharge_information_days),
        patient_engagement=engaged,
        medication_reconciliation=within(medrec, 0, input.policy.mrp_days),
    )


def transition_outcome(
    input: TransitionInput,
    steps: dict[str, StepState],
    status: TransitionStatus,
    reason: str,
    closed_at: datetime,
    readmitted_at: datetime | None,
) -> TransitionOutcome:
    return TransitionOutcome(
        closed_at=closed_at,
        status=status,
        reason=reason,
        readmitted_at=readmitted_at,
        tcm=tcm_outcome(input, steps, status, readmitted_at),
        trc=trc_outcome(input, steps),
    )
