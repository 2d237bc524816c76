"""Faults under a stream of ADT messages: the worker killed with SIGKILL and restarted, and the
listener stopped mid-stream while the sender retransmits what was not acknowledged. After
each: every AA'd discharge has exactly one transition, planned and projected; nothing lost,
nothing doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.conftest import TEST_KEYS
from tests.helpers import MllpClient, a03, assert_eventually, find_free_port, msa
from workers.embedded import find_binary
from workers.listener import listener_for
from workers.services import Services
from workers.settings import Settings


def worker_process(
    temporal_env: WorkflowEnvironment, settings: Settings
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env.update(
        CAREBRIDGE_TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        CAREBRIDGE_DATABASE_URL=str(settings.database_url),
        CAREBRIDGE_TASK_QUEUE=settings.task_queue,
        CAREBRIDGE_CODEC_KEYS=TEST_KEYS,
        CAREBRIDGE_LOG_LEVEL="WARNING",
    )
    return subprocess.Popen(
        [find_binary("carebridge"), "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest_asyncio.fixture
async def services(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[Services]:
    yield Services.build(settings, pool, temporal_env.client)


async def projected_once(pool: asyncpg.Pool, facility: str, expected: int) -> None:
    async def check() -> None:
        rows = await pool.fetch(
            "SELECT transition_id, steps FROM transitions WHERE facility = $1", facility
        )
        assert len(rows) == expected
        assert all(row["steps"] != "[]" for row in rows)  # planned by a worker

    await assert_eventually(check, within=120, interval=0.5)


async def test_worker_killed_with_sigkill_and_restarted_loses_nothing(
    temporal_env: WorkflowEnvironment, services: Services, settings: Settings
) -> None:
    facility = f"KILL{uuid.uuid4().hex[:4].upper()}"
    port = find_free_port()
    listener = listener_for(services.intake, settings)
    await listener.start("127.0.0.1", port)
    worker = worker_process(temporal_env, settings)
    acks = []
    try:
        client = await MllpClient.connect(port)
        for n in range(30):
            if n == 10:
                worker.send_signal(signal.SIGKILL)  # mid-stream, no goodbye
                worker.wait()
            if n == 20:
                worker = worker_process(temporal_env, settings)
            acks.append(await client.exchange(a03(facility=facility, visit=f"V{n}")))
            await asyncio.sleep(0.05)
        await client.close()
        assert [msa(a)[1] for a in acks] == ["AA"] * 30
        await projected_once(services.pool, facility, 30)
        workflows = [
            wf.id
            async for wf in temporal_env.client.list_workflows(
                f"WorkflowType = 'TransitionWorkflow' AND CbFacility = '{facility}'"
            )
        ]
        assert len(workflows) == len(set(workflows)) == 30
    finally:
        await listener.close()
        worker.terminate()
        worker.wait(timeout=30)


async def test_listener_stopped_mid_stream_with_retransmission_loses_and_doubles_nothing(
    temporal_env: WorkflowEnvironment, services: Services, settings: Settings
) -> None:
    facility = f"LSTN{uuid.uuid4().hex[:4].upper()}"
    port = find_free_port()
    listener = listener_for(services.intake, settings)
    await listener.start("127.0.0.1", port)
    worker = worker_process(temporal_env, settings)
    messages = [
        a03(facility=facility, visit=f"V{n}", control_id=f"{facility}-{n}") for n in range(24)
    ]
    acked: dict[int, str] = {}
    stopped = False
    try:
        client = await MllpClient.connect(port)
        n = 0
        while n < len(messages):
            if n == 12 and not stopped:
                # Send the 13th, then stop the listener before its ACK can be read.
                await client.send_raw(b"\x0b" + messages[n] + b"\x1c\x0d")
                await listener.close()
                stopped = True
                listener = listener_for(services.intake, settings)
                await listener.start("127.0.0.1", port)
                await client.close()
                client = await MllpClient.connect(port)  # the sender reconnects
                continue  # and retransmits message n, whose ACK it never read
            try:
                acked[n] = await client.exchange(messages[n])
                n += 1
            except (ConnectionError, asyncio.IncompleteReadError):
                await client.close()
                client = await MllpClient.connect(port)
        await client.close()
        assert all(msa(acked[i])[1] == "AA" for i in range(len(messages)))
        await projected_once(services.pool, facility, len(messages))
        inbox = await services.pool.fetch(
            "SELECT control_id, count(*) AS n FROM adt_inbox WHERE sending_facility = $1 "
            "GROUP BY control_id",
            facility,
        )
        assert len(inbox) == len(messages) and all(row["n"] == 1 for row in inbox)
    finally:
        await listener.close()
        worker.terminate()
        worker.wait(timeout=30)
