"""Steps that escalate in the same instant share one projection write (issue 23: fewer
local activities in a deadline's workflow task); each write still holds every change."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.transition import ProjectionRecord
from tests.workflow.support import RECORDS, advance_to, discharged_on, planned_state, steps_of

TOGETHER = ("medication_reconciliation", "follow_up_visit")  # both due on day 14


async def rows_with_escalations(transition_id: str, count: int) -> list[ProjectionRecord]:
    """The transition's rows that carry an escalation of one of TOGETHER, once `count`
    escalations have been written."""
    for _ in range(200):
        rows = [
            record
            for record in RECORDS
            if record.transition_id == transition_id
            and any(e.kind == "escalated" and e.step_id in TOGETHER for e in record.events)
        ]
        written = sum(
            1 for row in rows for e in row.events if e.kind == "escalated" and e.step_id in TOGETHER
        )
        if written >= count:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError("the escalations were never written")


async def test_two_steps_escalating_in_one_instant_write_one_projection_row(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, protocol="discharge-home-health")
    state = await planned_state(handle)
    steps = steps_of(state)
    due = steps[TOGETHER[0]].due_at
    assert due is not None and steps[TOGETHER[1]].due_at == due
    await advance_to(skipping_env, due + timedelta(minutes=1))

    rows = await rows_with_escalations(state.transition_id, len(TOGETHER))

    assert len(rows) == 1, [row.version for row in rows]
    (row,) = rows
    assert set(row.overdue_steps) >= set(TOGETHER)
    assert {s.step_id: s.escalation_level for s in row.steps if s.step_id in TOGETHER} == {
        step: 1 for step in TOGETHER
    }
