"""The projection row of a transition rebuilt from its final state (the workflow's result),
for the consistency sweep: a workflow whose last projection write gave up (PostgreSQL away
or too slow until the write's deadline) closes all the same, and its row is repaired from
Temporal, the source of truth. The same fields TransitionWorkflow writes
(workflows/transition_publishing.py `_projection`), without the timeline events that
write carried (the result does not hold them)."""

from __future__ import annotations

from schemas.call import is_call_step
from schemas.transition import ProjectionRecord, StepState, StepSummary, TransitionState


def step_summary(step: StepState, tcm_element: str | None) -> StepSummary:
    """A step as the projection row shows it (the workflow's writes and this repair alike);
    `tcm_element`: the TCM element its protocol rule names."""
    return StepSummary(
        step_id=step.step_id,
        status=step.status,
        tcm_element=tcm_element,
        assignee=step.assignee,
        due_at=step.due_at,
        limit_at=step.limit_at,
        overdue_since=step.overdue_since,
        missed_before_arrival=step.missed_before_arrival,
        escalation_level=step.escalation_level,
        completed_at=step.completed_at,
        completed_by=step.completed_by,
        outcome=step.outcome,
        complexity=step.complexity,
        attempts=tuple((a.at, a.result) for a in step.attempts),
        is_call=is_call_step(step.kind, step.owner_role),
        appointment_at=step.appointment_at,
        appointment_with=step.appointment_with,
        appointment_late=step.appointment_late,
        reported_at=step.reported_at,
    )


def final_record(state: TransitionState, encounter_key: str) -> ProjectionRecord:
    """`encounter_key`: the row's own (the state does not carry it)."""
    live = [s for s in state.steps if not s.is_terminal and s.due_at is not None]
    live.sort(key=lambda s: s.due_at or state.discharged_at)
    return ProjectionRecord(
        transition_id=state.transition_id,
        encounter_key=encounter_key,
        facility=state.facility,
        protocol_id=state.protocol_id,
        protocol_version=state.protocol_version,
        status=state.status,
        discharged_at=state.discharged_at,
        risk_tier=state.risk.tier,
        lace=state.risk.lace,
        current_step=live[0].step_id if live else None,
        next_due_at=live[0].due_at if live else None,
        overdue_steps=tuple(s.step_id for s in live if s.overdue_since is not None),
        escalation_level=max((s.escalation_level for s in live), default=0),
        readmitted_at=state.readmitted_at,
        owner=state.owner,
        steps=tuple(
            step_summary(step, step.tcm_element.value if step.tcm_element else None)
            for step in state.steps
        ),
        outcome=state.outcome,
        version=state.version,
    )
