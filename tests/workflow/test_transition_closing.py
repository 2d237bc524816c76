"""A transition that is closing takes no more work: an Update that arrives while its closing
publish is still being retried is refused by the validator, instead of being accepted and
left unfinished when the workflow returns."""

from __future__ import annotations

import asyncio
from datetime import time

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from schemas.transition import AdtSignal, NoteRequest, ProjectionRecord, TransitionStatus
from tests.workflow.support import (
    advance_to,
    new_worker,
    next_weekday,
    planned_state,
    start_transition,
)
from workflows.transition import TransitionWorkflow

DATABASE_UP = [True]


@activity.defn(name="record_transition")
async def record_unless_down(record: ProjectionRecord) -> bool:
    if not DATABASE_UP[0]:
        raise ConnectionRefusedError("PostgreSQL is away")
    return True


async def test_a_note_sent_while_the_transition_closes_is_refused(
    skipping_env: WorkflowEnvironment,
) -> None:
    async with new_worker(skipping_env, record=record_unless_down) as worker:
        monday = next_weekday(await skipping_env.get_current_time(), 0, time(9, 0))
        await advance_to(skipping_env, monday)
        handle = await start_transition(skipping_env, worker, monday)
        await planned_state(handle)
        DATABASE_UP[0] = False  # the closing publish now retries (for up to 2 minutes)
        try:
            await handle.signal(
                TransitionWorkflow.adt_event,
                AdtSignal(event_type="A13", message_control_id="CLOSE-1", occurred_at=monday),
            )
            for _ in range(50):  # the signal has been handled: the transition is closing
                state = await handle.query(TransitionWorkflow.get_state)
                if state.status != TransitionStatus.ACTIVE:
                    break
                await asyncio.sleep(0.05)
            assert state.status == TransitionStatus.CANCELLED
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await handle.execute_update(
                    TransitionWorkflow.add_note, NoteRequest(by="rn.a", text="too late")
                )
            assert "the transition is cancelled" in str(refused.value.cause)
        finally:
            DATABASE_UP[0] = True
        final = await handle.result()
    assert final.status == TransitionStatus.CANCELLED
    assert final.notes == []
