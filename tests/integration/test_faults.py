"""Faults under a stream of ADT messages: the worker killed with SIGKILL and restarted, and the
listener stopped mid-stream while the sender retransmits what was not acknowledged. After
each: every AA'd discharge has exactly one transition, planned and projected; nothing lost,
nothing doubled."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.helpers import MllpClient, a03, msa
from tests.integration.conftest import (
    assert_exactly_once,
    assert_projected,
    assert_settled_and_consistent,
    carebridge_process,
    start_listener,
)
from workers.runtime.services import Services
from workers.runtime.settings import Settings


@pytest_asyncio.fixture
async def services(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[Services]:
    yield Services.build(settings, pool, temporal_env.client)


async def test_worker_killed_with_sigkill_and_restarted_loses_nothing(
    temporal_env: WorkflowEnvironment, services: Services, settings: Settings, fault_messages: int
) -> None:
    facility = f"KILL{uuid.uuid4().hex[:4].upper()}"
    listener, port = await start_listener(services, settings)
    worker = carebridge_process("worker", temporal_env, settings)
    acks = []
    try:
        client = await MllpClient.connect(port)
        for n in range(fault_messages):
            if n == fault_messages // 3:
                worker.send_signal(signal.SIGKILL)  # mid-stream, no goodbye
                worker.wait()
            if n == 2 * fault_messages // 3:
                worker = carebridge_process("worker", temporal_env, settings)
            acks.append(await client.exchange(a03(facility=facility, visit=f"V{n}")))
            await asyncio.sleep(0.05)
        await client.close()
        assert [msa(a)[1] for a in acks] == ["AA"] * fault_messages
        await assert_projected(services.pool, facility, fault_messages, within=120)
        await assert_exactly_once(services.pool, temporal_env.client, facility, fault_messages)
        await assert_settled_and_consistent(services.pool, temporal_env.client, facility)
    finally:
        await listener.close()
        worker.terminate()
        worker.wait(timeout=30)


async def test_listener_stopped_mid_stream_with_retransmission_loses_and_doubles_nothing(
    temporal_env: WorkflowEnvironment, services: Services, settings: Settings, fault_messages: int
) -> None:
    facility = f"LSTN{uuid.uuid4().hex[:4].upper()}"
    listener, port = await start_listener(services, settings)
    worker = carebridge_process("worker", temporal_env, settings)
    messages = [
        a03(facility=facility, visit=f"V{n}", control_id=f"{facility}-{n}")
        for n in range(fault_messages)
    ]
    acked: dict[int, str] = {}
    stopped = False
    try:
        client = await MllpClient.connect(port)
        n = 0
        while n < len(messages):
            if n == len(messages) // 3 and not stopped:
                # Send message n, then stop the listener before its ACK can be read.
                await client.send_raw(b"\x0b" + messages[n] + b"\x1c\x0d")
                await listener.close()
                stopped = True
                listener, _ = await start_listener(services, settings, port)
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
        await assert_projected(services.pool, facility, len(messages), within=120)
        await assert_exactly_once(services.pool, temporal_env.client, facility, len(messages))
        await assert_settled_and_consistent(services.pool, temporal_env.client, facility)
    finally:
        await listener.close()
        worker.terminate()
        worker.wait(timeout=30)
