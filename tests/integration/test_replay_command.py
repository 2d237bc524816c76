"""Issue 19, upgrades: `carebridge replay` replays the histories Temporal holds against this
build before it is promoted (deploy/runbooks/upgrades.md), exit 0 when all replay and 1,
naming the runs, when one does not."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
from temporalio import workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from store import security
from tests.conftest import TEST_KEYS
from tests.helpers import database_dsn
from tests.integration.conftest import RunningStack, discharged_and_planned, run_cli
from workers.runtime.settings import Settings


@workflow.defn(name="TransitionWorkflow", sandboxed=False)
class AnOlderTransition:
    """A history of the transition's type that this build's code cannot replay."""

    @workflow.run
    async def run(self) -> None:
        await workflow.sleep(timedelta(hours=1))


def cli_env(temporal_env: WorkflowEnvironment, settings: Settings) -> dict[str, str]:
    return {
        "CAREBRIDGE_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "CAREBRIDGE_DATABASE_URL": database_dsn(settings),
        "CAREBRIDGE_CODEC_KEYS": TEST_KEYS,
        "CAREBRIDGE_LOG_LEVEL": "WARNING",
    }


async def bearer(pool: asyncpg.Pool, role: str) -> dict[str, str]:
    _, token = await security.create_token(
        pool, name=f"replay {role}", subject=f"replay.{role}", role=role
    )
    return {"Authorization": f"Bearer {token}"}


async def test_replay_passes_on_histories_this_build_wrote_and_names_one_it_cannot(
    stack: RunningStack, temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    tid = await discharged_and_planned(
        stack.http,
        settings,
        f"RPL{uuid.uuid4().hex[:4].upper()}",
        adt_headers=await bearer(pool, "integration"),
        read_headers=await bearer(pool, "operator"),
    )
    env = cli_env(temporal_env, settings)
    ours = await run_cli(env, "replay", "--query", f"WorkflowId = 'transition-{tid}'")
    assert ours.exit_code == 0, ours.output
    assert "every history replays on this build" in ours.output

    older_id = f"older-{uuid.uuid4()}"
    queue = f"tq-{uuid.uuid4()}"
    async with Worker(temporal_env.client, task_queue=queue, workflows=[AnOlderTransition]):
        handle = await temporal_env.client.start_workflow(
            AnOlderTransition.run, id=older_id, task_queue=queue
        )
        # its first workflow task is done once the timer is in the history
        async for event in handle.fetch_history_events(wait_new_event=True):
            if event.HasField("timer_started_event_attributes"):
                break
    both = f"WorkflowId = 'transition-{tid}' OR WorkflowId = '{older_id}'"
    refused = await run_cli(env, "replay", "--query", both)
    assert refused.exit_code == 1, refused.output
    assert handle.result_run_id and handle.result_run_id in refused.output
    assert "1 histories do not replay on this build: do not promote it" in refused.output
    await handle.terminate()
