"""Histories made on the real dev server replay: a query that arrives while the plan's local
activity runs splits the first workflow task, and the workflow must replay across that split
(a patch marker asked for after the local activity did not)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from schemas.protocol_library import load_library
from tests.helpers import start_direct
from tests.workflow.support import PROTOCOLS_DIR
from workers.runtime.settings import Settings
from workers.worker import build_worker
from workflows.transition import TransitionWorkflow


async def test_a_history_whose_first_task_a_query_split_replays(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    library = load_library(PROTOCOLS_DIR)
    async with build_worker(temporal_env.client, pool, settings):
        handle = await start_direct(
            temporal_env.client,
            settings.task_queue,
            library.latest("discharge-home"),
            facility="REPLAY",
            discharged_at=datetime.now(UTC) - timedelta(days=1),
        )
        await handle.query(TransitionWorkflow.get_state)  # at once: during the plan
        await asyncio.sleep(1)
        history = await handle.fetch_history()
        await handle.terminate("test over")
    tasks = sum(e.HasField("workflow_task_completed_event_attributes") for e in history.events)
    assert tasks >= 1
    replayer = Replayer(
        workflows=[TransitionWorkflow], data_converter=temporal_env.client.data_converter
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None
