"""TransitionWorkflow on the time-skipping test server: days of protocol in milliseconds.

The projection activity is replaced by a recorder (this is a workflow test; the integration
tests use the real one against PostgreSQL). Planning is the real activity.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.transition import CompleteStepRequest, StepStatus, TransitionStatus
from tests.workflow.support import RECORDS, new_worker, start_time_skipping_env, start_transition
from workflows.transition import TransitionWorkflow


@pytest_asyncio.fixture(scope="session")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping_env()
    yield env
    await env.shutdown()


@pytest_asyncio.fixture
async def worker(skipping_env: WorkflowEnvironment) -> AsyncIterator[Worker]:
    async with new_worker(skipping_env) as running:
        yield running


async def test_contact_not_made_within_two_business_days_is_marked_overdue(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    discharged = await skipping_env.get_current_time()
    handle = await start_transition(skipping_env, worker, discharged)
    wall = time.monotonic()
    await skipping_env.sleep(timedelta(days=7))
    state = await handle.query(TransitionWorkflow.get_state)
    elapsed = time.monotonic() - wall
    print(f"7 virtual days passed in {elapsed:.3f} s of wall time")

    steps = {step.step_id: step for step in state.steps}
    contact = steps["interactive_contact"]
    assert contact.status == StepStatus.OPEN
    assert contact.overdue_since is not None
    assert contact.overdue_since >= contact.due_at
    # Two business days never stretch past 6 calendar days (weekend + a Monday holiday).
    assert contact.due_at - discharged <= timedelta(days=6)
    assert steps["medication_reconciliation"].overdue_since is None  # due on day 14
    assert state.status == TransitionStatus.ACTIVE
    mine = [r for r in RECORDS if r.transition_id == state.transition_id]
    assert mine[-1].overdue_steps == ("interactive_contact",)
    assert [r.version for r in mine] == sorted(r.version for r in mine)


async def test_steps_completed_in_time_are_never_overdue_and_the_transition_completes(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await start_transition(skipping_env, worker, await skipping_env.get_current_time())
    for step in ("interactive_contact", "medication_reconciliation"):
        done = await handle.execute_update(
            TransitionWorkflow.complete_step,
            CompleteStepRequest(step_id=step, by="rn.alvarez", outcome="reached patient"),
        )
        assert done.status == StepStatus.COMPLETED
        assert done.completed_by == "rn.alvarez"
    final = await handle.result()
    assert final.status == TransitionStatus.COMPLETED
    assert all(step.overdue_since is None for step in final.steps)
    last = [r for r in RECORDS if r.transition_id == final.transition_id][-1]
    assert last.status == TransitionStatus.COMPLETED
    assert last.current_step is None and last.next_due_at is None


async def test_update_validator_rejects_unknown_and_repeated_completions(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await start_transition(skipping_env, worker, await skipping_env.get_current_time())
    await handle.execute_update(
        TransitionWorkflow.complete_step,
        CompleteStepRequest(step_id="interactive_contact", by="rn.alvarez"),
    )
    with pytest.raises(WorkflowUpdateFailedError) as repeated:
        await handle.execute_update(
            TransitionWorkflow.complete_step,
            CompleteStepRequest(step_id="interactive_contact", by="rn.alvarez"),
        )
    assert "'interactive_contact' is already completed" in str(repeated.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as unknown:
        await handle.execute_update(
            TransitionWorkflow.complete_step,
            CompleteStepRequest(step_id="home_visit", by="rn.alvarez"),
        )
    assert "unknown step 'home_visit'" in str(unknown.value.cause)
    state = await handle.query(TransitionWorkflow.get_state)
    assert [s.step_id for s in state.steps if s.status == StepStatus.COMPLETED] == [
        "interactive_contact"
    ]
