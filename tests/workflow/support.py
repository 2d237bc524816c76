"""The time-skipping environment and a worker whose projection writes go to a list."""

from __future__ import annotations

import uuid
from datetime import datetime

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.planning import PlanningActivities
from schemas.protocol import TCM_MINIMAL
from schemas.transition import ProjectionRecord, TransitionInput, TransitionState
from workers.embedded import find_binary
from workers.temporal import DATA_CONVERTER, ensure_search_attributes
from workflows.transition import TransitionWorkflow

RECORDS: list[ProjectionRecord] = []


@activity.defn(name="record_transition")
async def record_transition(record: ProjectionRecord) -> bool:
    RECORDS.append(record)
    return True


async def start_time_skipping_env() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=find_binary("temporal-test-server"),
    )
    await ensure_search_attributes(env.client, "default")
    return env


def new_worker(env: WorkflowEnvironment) -> Worker:
    """Real planning activity, recorded projection writes, a fresh task queue."""
    planning = PlanningActivities(default_timezone="America/New_York")
    return Worker(
        env.client,
        task_queue=f"tq-{uuid.uuid4()}",
        workflows=[TransitionWorkflow],
        activities=[planning.plan_transition, record_transition],
    )


async def start_transition(
    env: WorkflowEnvironment, worker: Worker, discharged_at: datetime, tid: str | None = None
) -> WorkflowHandle[TransitionWorkflow, TransitionState]:
    tid = tid or uuid.uuid4().hex[:24]
    return await env.client.start_workflow(
        TransitionWorkflow.run,
        TransitionInput(
            transition_id=tid,
            encounter_key=tid.ljust(64, "0"),
            facility="GENHOSP",
            discharged_at=discharged_at,
            protocol=TCM_MINIMAL,
        ),
        id=f"transition-{tid}",
        task_queue=worker.task_queue,
    )
