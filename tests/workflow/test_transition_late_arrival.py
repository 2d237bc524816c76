"""A discharge that reaches carebridge after some of its deadlines (a replayed queue, an HIE
that forwards days later): those steps are missed before arrival and climb no ladder."""

from __future__ import annotations

from datetime import time, timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.transition import CompleteStepRequest, StepStatus, TransitionStatus
from tests.workflow.support import (
    advance_to,
    next_weekday,
    notices_for,
    planned_state,
    start_transition,
    steps_of,
)
from workflows.transition import TransitionWorkflow


async def test_steps_due_before_arrival_are_missed_and_never_escalate(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    monday = next_weekday(await skipping_env.get_current_time(), 0, time(9, 0))
    arrived = monday + timedelta(days=11)  # the Friday of the next week
    await advance_to(skipping_env, arrived)
    handle = await start_transition(skipping_env, worker, monday, received_at=arrived)
    state = await planned_state(handle)
    tid = state.transition_id
    steps = steps_of(state)

    contact = steps["interactive_contact"]
    assert contact.missed_before_arrival
    assert contact.due_at is not None and contact.due_at < arrived
    assert contact.overdue_since == contact.due_at
    assert contact.escalation_level == 0
    assert contact.status == StepStatus.OPEN  # a late call still helps the patient
    medrec = steps["medication_reconciliation"]
    assert medrec.due_at is not None and medrec.due_at > arrived
    assert not medrec.missed_before_arrival and medrec.overdue_since is None
    assert state.received_at == arrived

    # One "arrived late" notice, on the worklist, naming every missed step.
    missed = sorted(s.step_id for s in steps.values() if s.missed_before_arrival)
    assert "interactive_contact" in missed and "medication_reconciliation" not in missed
    late = notices_for(tid)
    assert [(n.level, n.channel, sorted(n.missed_before_arrival)) for n in late] == [
        (0, "worklist", missed)
    ]

    # Days pass: the missed steps still climb nothing; a step due after arrival does.
    await skipping_env.sleep(timedelta(days=2))  # Sunday, day 13: nothing else due yet
    assert [n.step_id for n in notices_for(tid) if n.level > 0] == []
    await handle.execute_update(
        TransitionWorkflow.complete_step,
        CompleteStepRequest(step_id="follow_up_visit", by="dr.okafor"),
    )
    await skipping_env.sleep(timedelta(days=2))
    escalated = {(n.step_id, n.level) for n in notices_for(tid) if n.level > 0}
    assert ("medication_reconciliation", 1) in escalated
    assert not {step for step, _ in escalated} & set(missed)

    await handle.terminate("test over")


async def test_late_discharge_outcome_says_the_contact_deadline_passed_before_arrival(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    monday = next_weekday(await skipping_env.get_current_time(), 0, time(9, 0))
    arrived = monday + timedelta(days=25)
    await advance_to(skipping_env, arrived)
    handle = await start_transition(skipping_env, worker, monday, received_at=arrived)
    await planned_state(handle)
    await handle.execute_update(
        TransitionWorkflow.complete_step,
        CompleteStepRequest(step_id="interactive_contact", by="rn.alvarez"),
    )
    state = await handle.result()  # the period ends five days later
    assert state.status == TransitionStatus.COMPLETED
    assert state.outcome is not None
    assert not state.outcome.tcm.eligible
    assert any("before the discharge arrived" in r for r in state.outcome.tcm.reasons)
    assert [n.level for n in notices_for(state.transition_id)] == [0]


async def test_a_discharge_on_time_gets_no_arrived_late_notice(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    monday = next_weekday(await skipping_env.get_current_time(), 0, time(9, 0))
    await advance_to(skipping_env, monday + timedelta(hours=1))
    handle = await start_transition(skipping_env, worker, monday, received_at=monday)
    state = await planned_state(handle)
    assert not any(s.missed_before_arrival for s in state.steps)
    assert notices_for(state.transition_id) == []
    await handle.terminate("test over")
