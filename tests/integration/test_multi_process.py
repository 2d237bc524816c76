"""Two worker processes and two listener processes on one machine, one Temporal server and one
database: work spreads across both workers, and killing one of them loses nothing."""

from __future__ import annotations

import asyncio
import signal
import uuid

import asyncpg
from temporalio.testing import WorkflowEnvironment

from tests.helpers import MllpClient, a03, find_free_port, msa
from tests.integration.conftest import (
    assert_exactly_once,
    assert_projected,
    assert_settled_and_consistent,
    carebridge_process,
    wait_for_pollers,
)
from workers.runtime.settings import Settings


async def connect_when_up(port: int) -> MllpClient:
    for _ in range(100):
        try:
            return await MllpClient.connect(port)
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"no listener on {port}")


async def test_two_workers_two_listeners_share_the_work_and_survive_losing_one(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    facility = f"MP{uuid.uuid4().hex[:4].upper()}"
    ports = [find_free_port(), find_free_port()]
    listeners = [
        carebridge_process(
            "listener",
            temporal_env,
            settings,
            CAREBRIDGE_MLLP_PORT=str(p),
            CAREBRIDGE_LISTENER_HEALTH_PORT=str(find_free_port()),
        )
        for p in ports
    ]
    workers = [carebridge_process("worker", temporal_env, settings) for _ in range(2)]
    try:
        clients = [await connect_when_up(p) for p in ports]

        await wait_for_pollers(temporal_env.client, settings.task_queue, 2)
        for n in range(40):
            if n == 25:
                workers[0].send_signal(signal.SIGKILL)
            ack = await clients[n % 2].exchange(a03(facility=facility, visit=f"V{n}"))
            assert msa(ack)[1] == "AA", ack
            await asyncio.sleep(0.05)
        for client in clients:
            await client.close()

        # An activity caught on the killed worker is retried after its 30 s start-to-close
        # timeout, and its sticky workflow tasks move after 10 s: allow for both.
        await assert_projected(pool, facility, 40, within=120)
        identities = set()
        async for wf in temporal_env.client.list_workflows(
            f"WorkflowType = 'TransitionWorkflow' AND CbFacility = '{facility}'"
        ):
            history = await temporal_env.client.get_workflow_handle(wf.id).fetch_history()
            identities |= {
                e.workflow_task_completed_event_attributes.identity
                for e in history.events
                if e.HasField("workflow_task_completed_event_attributes")
            }
        assert len(identities) >= 2, identities  # both worker processes took work
        await assert_exactly_once(pool, temporal_env.client, facility, 40)
        await assert_settled_and_consistent(pool, temporal_env.client, facility)
    finally:
        for child in (*listeners, *workers):
            if child.poll() is None:
                child.terminate()
                child.wait(timeout=30)
