"""Record TransitionWorkflow histories for the replay tests.

Run `python -m tests.histories.record` after a deliberate workflow change (behind
`workflow.patched`), and commit the new file beside the old ones: old histories must keep
replaying for as long as transitions started under them can be running (30 days and more).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.planning import PlanningActivities
from schemas.protocol import TCM_MINIMAL
from schemas.transition import CompleteStepRequest, ProjectionRecord, TransitionInput
from workers.embedded import find_binary
from workers.temporal import DATA_CONVERTER, ensure_search_attributes
from workflows.transition import TransitionWorkflow

HERE = Path(__file__).resolve().parent


@activity.defn(name="record_transition")
async def record_transition(record: ProjectionRecord) -> bool:
    return True


async def record(name: str) -> Path:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=find_binary("temporal-test-server"),
    )
    try:
        await ensure_search_attributes(env.client, "default")
        planning = PlanningActivities(default_timezone="America/New_York")
        async with Worker(
            env.client,
            task_queue=f"tq-{uuid.uuid4()}",
            workflows=[TransitionWorkflow],
            activities=[planning.plan_transition, record_transition],
        ) as worker:
            tid = "0" * 24
            handle = await env.client.start_workflow(
                TransitionWorkflow.run,
                TransitionInput(
                    transition_id=tid,
                    encounter_key="0" * 64,
                    facility="GENHOSP",
                    discharged_at=await env.get_current_time(),
                    protocol=TCM_MINIMAL,
                ),
                id=f"transition-{tid}",
                task_queue=worker.task_queue,
            )
            await env.sleep(timedelta(days=7))  # contact goes overdue
            for step in ("interactive_contact", "medication_reconciliation"):
                await handle.execute_update(
                    TransitionWorkflow.complete_step,
                    CompleteStepRequest(step_id=step, by="rn.alvarez", note="recorded history"),
                )
            await handle.result()
            history = await handle.fetch_history()
    finally:
        await env.shutdown()
    path = HERE / f"{name}.json"
    path.write_text(history.to_json())
    return path


if __name__ == "__main__":
    print(asyncio.run(record(sys.argv[1] if len(sys.argv) > 1 else "transition_tcm_minimal_v1")))
