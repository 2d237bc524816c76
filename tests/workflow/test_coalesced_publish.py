"""Steps that escalate in the same instant share one projection write (issue 23: fewer
local activities in a deadline's workflow task); each write still holds every change."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.transition import ProjectionRecord
from tests.workflow.support import RECORDS, start_transition

TOGETHER = ("medication_reconciliation", "follow_up_visit")  # both due on day 14


async def settled_rows(transition_id: str) -> list[ProjectionRecord]:
    """The transition's projection rows once TOGETHER have escalated and no row came for a
    while (the ladders of every past-due step have run)."""
    seen = -1
    for _ in range(200):
        rows = [record for record in RECORDS if record.transition_id == transition_id]
        escalated = {
            event.step_id for row in rows for event in row.events if event.kind == "escalated"
        }
        if len(rows) == seen and set(TOGETHER) <= escalated:
            return rows
        seen = len(rows)
        await asyncio.sleep(0.25)
    raise AssertionError("the escalations were never written")


async def test_two_steps_escalating_in_one_instant_write_one_projection_row(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    # Started 15 days after its discharge (no arrival time: every ladder runs): both steps
    # are past due at the plan, so their worklist escalations go out in one workflow task.
    discharged = await skipping_env.get_current_time() - timedelta(days=15)
    handle = await start_transition(
        skipping_env, worker, discharged, protocol="discharge-home-health"
    )

    rows = await settled_rows(handle.id.removeprefix("transition-"))

    # One write per escalation would leave rows with nothing new (their changes went out
    # with the row before them); shared writes leave none.
    assert len(rows) > 2
    assert all(row.events for row in rows), [len(row.events) for row in rows]
