"""A worker runs a bounded number of workflow tasks at once and keeps a cached workflow's
tasks on its sticky queue for minutes: in a deadline storm the rest wait at the server
instead of timing out half-run (10 s) or moving to the shared queue (10 s), either of which
replays the workflow from its history (issue 23, measured with bench.timer_storm)."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
from temporalio.testing import WorkflowEnvironment

from workers.runtime.settings import Settings
from workers.worker import build_worker


async def test_workflow_task_slots_and_sticky_wait_follow_the_settings(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    mine = settings.model_copy(
        update={"worker_workflow_task_slots": 5, "worker_sticky_timeout_seconds": 42.0}
    )
    config = build_worker(temporal_env.client, pool, mine).config()
    assert config.get("max_concurrent_workflow_tasks") == 5
    assert config.get("sticky_queue_schedule_to_start_timeout") == timedelta(seconds=42)


def test_the_defaults_bound_workflow_tasks_and_keep_sticky_tasks_for_minutes() -> None:
    defaults = Settings()
    assert defaults.worker_workflow_task_slots == 16  # the SDK's default is 500
    assert defaults.worker_sticky_timeout_seconds >= 60  # the SDK's default is 10 s
