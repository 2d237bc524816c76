"""One task owns each step, and a step that can no longer open stops: a readmission and its
withdrawal in one activation, and a cancelled prerequisite."""

from __future__ import annotations

from collections import Counter
from datetime import time, timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.transition import AdtSignal, CancelStepRequest, StepStatus, TransitionStatus
from tests.workflow.support import (
    advance_to,
    discharged_on,
    new_worker,
    next_weekday,
    notices_for,
    planned_state,
    start_transition,
    steps_of,
)
from workflows.transition import TransitionWorkflow


async def test_a_readmission_withdrawn_in_the_same_activation_leaves_one_task_per_step(
    skipping_env: WorkflowEnvironment,
) -> None:
    monday = next_weekday(await skipping_env.get_current_time(), 0, time(9, 0))
    await advance_to(skipping_env, monday)
    async with new_worker(skipping_env, cache=False) as first:
        handle = await start_transition(skipping_env, first, monday)
        state = await planned_state(handle)
    # No worker polls: both signals wait, and the next worker gets them in one activation.
    admitted = monday + timedelta(hours=3)
    for kind in ("A01", "A11"):
        await handle.signal(
            TransitionWorkflow.adt_event,
            AdtSignal(
                event_type=kind,
                message_control_id=f"SAME-{kind}",
                occurred_at=admitted,
                patient_class="I",
                encounter_key="readmission".ljust(64, "0"),
            ),
        )
    async with new_worker(skipping_env, first.task_queue):
        await skipping_env.sleep(timedelta(days=20))  # every ladder climbs to its top
        after = await handle.query(TransitionWorkflow.get_state)
        await handle.terminate("test over")
    assert after.readmitted_at is None  # withdrawn
    sent = Counter((n.step_id, n.level) for n in notices_for(state.transition_id))
    assert sent, "the steps escalated after the withdrawal"
    assert max(sent.values()) == 1, sent  # each level once: one task per step


async def test_cancelling_a_prerequisite_stops_the_steps_that_wait_for_it(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, protocol="discharge-home-health")
    await handle.execute_update(
        TransitionWorkflow.cancel_step,
        CancelStepRequest(
            step_id="home_health_referral", by="sup.k", reason="patient declined home health"
        ),
    )
    steps = steps_of(await handle.query(TransitionWorkflow.get_state))
    start_of_care = steps["home_health_start_of_care"]
    assert start_of_care.status == StepStatus.STOPPED
    assert start_of_care.cancel_reason == "home_health_referral was cancelled"
    await skipping_env.sleep(timedelta(days=5))  # its 48 hours and whole ladder pass
    tid = (await handle.query(TransitionWorkflow.get_state)).transition_id
    assert notices_for(tid, "home_health_start_of_care") == []
    assert (await handle.query(TransitionWorkflow.get_state)).status == TransitionStatus.ACTIVE
    await handle.terminate("test over")
