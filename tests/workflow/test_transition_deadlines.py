"""Due instants and escalation ladders on the time-skipping server (days pass in ms)."""

from __future__ import annotations

import time as wall
from datetime import datetime, time, timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.transition import CompleteStepRequest, StepStatus
from tests.workflow.support import (
    HIGH_RISK,
    NY,
    advance_to,
    discharged_on,
    next_thanksgiving_eve,
    next_weekday,
    notices_for,
    planned_state,
    start_transition,
    steps_of,
)
from workflows.transition import TransitionWorkflow

END_OF_DAY = time(23, 59, 59)


async def test_friday_afternoon_discharge_contact_due_tuesday_end_of_day(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    friday = next_weekday(await skipping_env.get_current_time(), 4, time(15, 30))
    await advance_to(skipping_env, friday)
    handle = await start_transition(skipping_env, worker, friday)
    steps = steps_of(await planned_state(handle))

    contact = steps["interactive_contact"]
    assert contact.due_at is not None
    local_due = contact.due_at.astimezone(NY)
    assert local_due.strftime("%A") in ("Tuesday", "Wednesday")  # Wednesday if Monday is a holiday
    assert local_due.time() == END_OF_DAY
    assert local_due.date() - friday.date() <= timedelta(days=5)
    if local_due.strftime("%A") == "Tuesday":
        assert local_due.date() == friday.date() + timedelta(days=4)


async def test_discharge_the_day_before_thanksgiving_skips_the_holiday(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    eve = next_thanksgiving_eve(await skipping_env.get_current_time(), time(10, 0))
    await advance_to(skipping_env, eve)
    handle = await start_transition(skipping_env, worker, eve)
    steps = steps_of(await planned_state(handle))
    contact_due = steps["interactive_contact"].due_at
    assert contact_due is not None
    # Wednesday -> (Thursday Thanksgiving skipped) Friday is day 1, Monday is day 2.
    assert contact_due == datetime.combine(eve.date() + timedelta(days=5), END_OF_DAY, tzinfo=NY)


async def test_every_escalation_level_fires_in_order_for_a_step_never_completed(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    tid = (await handle.query(TransitionWorkflow.get_state)).transition_id
    # Completed on time: no escalation for these two.
    for step in ("medication_reconciliation", "follow_up_visit"):
        await handle.execute_update(
            TransitionWorkflow.complete_step, CompleteStepRequest(step_id=step, by="rn.alvarez")
        )

    started = wall.monotonic()
    await skipping_env.sleep(timedelta(days=5))
    print(f"5 virtual days in {wall.monotonic() - started:.3f} s of wall time")

    contact = steps_of(await handle.query(TransitionWorkflow.get_state))["interactive_contact"]
    fired = notices_for(tid, "interactive_contact")
    assert [(n.level, n.role, n.channel) for n in fired] == [
        (1, "care_manager", "worklist"),
        (2, "supervisor", "email"),
        (3, "medical_director", "page"),
    ]
    assert [n.scheduled_at for n in fired] == sorted(n.scheduled_at for n in fired)
    assert [n.scheduled_at for n in fired] == [e.at for e in contact.escalations]
    assert contact.escalation_level == 3
    assert contact.overdue_since is not None and contact.status == StepStatus.OPEN
    assert notices_for(tid, "medication_reconciliation") == []
    assert notices_for(tid, "follow_up_visit") == []


async def test_completing_a_step_stops_its_ladder_midway(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    state = await handle.query(TransitionWorkflow.get_state)
    contact = steps_of(state)["interactive_contact"]
    level_two = contact.escalations[1].at
    await advance_to(skipping_env, level_two + timedelta(minutes=1))
    await handle.execute_update(
        TransitionWorkflow.complete_step,
        CompleteStepRequest(step_id="interactive_contact", by="rn.alvarez", outcome="reached"),
    )
    await skipping_env.sleep(timedelta(days=3))
    assert [n.level for n in notices_for(state.transition_id, "interactive_contact")] == [1, 2]


async def test_high_risk_transition_adds_the_day_7_check_in_and_7_day_visit(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, risk=HIGH_RISK)
    state = await handle.query(TransitionWorkflow.get_state)
    steps = steps_of(state)
    day_seven = datetime.combine(
        state.discharged_at.astimezone(NY).date() + timedelta(days=7), END_OF_DAY, tzinfo=NY
    )
    assert steps["follow_up_visit"].due_at == day_seven
    assert steps["high_risk_check_in"].due_at == day_seven
    assert steps["follow_up_visit"].limit_at == day_seven + timedelta(days=7)
