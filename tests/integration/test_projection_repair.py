"""A transition whose last projection write gave up (PostgreSQL away or too slow past the
write's deadline) closes all the same, and the nightly sweep repairs its row from Temporal:
the whole final state (status, version, steps, outcome), not the status alone."""

from __future__ import annotations

import json
import uuid

import asyncpg
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from schemas.maintenance import SweepReport
from schemas.transition import TransitionState
from tests.helpers import a03, transition_of, with_event
from workers.runtime.services import Services
from workers.runtime.settings import Settings
from workers.worker import build_worker
from workflows.sweep import SweepWorkflow

# What the row holds when the closing write never landed: the last row written while the
# transition was active (an older version, no outcome, a step still due).
LOST_CLOSE = """
UPDATE transitions SET status = 'active', version = 1, outcome = NULL,
    current_step = 'interactive_contact', next_due_at = now()
WHERE transition_id = $1
"""


async def test_the_sweep_writes_the_final_row_of_a_transition_whose_closing_write_was_lost(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    services = Services.build(settings, pool, temporal_env.client)
    facility, visit = f"RPR{uuid.uuid4().hex[:5].upper()}", f"V{uuid.uuid4().hex[:8]}"
    discharge = a03(facility=facility, visit=visit)
    tid = transition_of(settings, facility, visit)
    async with build_worker(temporal_env.client, pool, settings):
        for raw in (discharge, with_event(a03(facility=facility, visit=visit), "A13")):
            assert (await services.intake.handle(raw)).code == "AA"
        handle = temporal_env.client.get_workflow_handle(
            keys.workflow_id(tid), result_type=TransitionState
        )
        final: TransitionState = await handle.result()
        assert final.outcome is not None and final.version > 1
        await pool.execute(LOST_CLOSE, tid)

        sweep = await temporal_env.client.start_workflow(
            SweepWorkflow.run, id=f"sweep-{uuid.uuid4()}", task_queue=settings.task_queue
        )
        report: SweepReport = await sweep.result()
    await services.intake.close()

    assert tid in report.closed
    row = await pool.fetchrow("SELECT * FROM transitions WHERE transition_id = $1", tid)
    assert row is not None
    assert (row["status"], row["version"]) == (final.status.value, final.version)
    assert (row["current_step"], row["next_due_at"]) == (None, None)
    assert json.loads(row["outcome"]) == final.outcome.model_dump(mode="json")
    steps = {s["step_id"]: s["status"] for s in json.loads(row["steps"])}
    assert steps == {s.step_id: s.status.value for s in final.steps}
