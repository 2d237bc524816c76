"""The Temporal server restarted (persistent state) under a stream of ADT messages while a
worker process and the listener keep running: messages that arrive while it is down get AR
within the bound, the sender retries them to AA, the worker reconnects by itself, and
afterwards every discharge has exactly one transition and the projection agrees with
Temporal's open workflows."""

from __future__ import annotations

import uuid

import asyncpg

from tests.helpers import MllpClient, a03, msa
from tests.integration.conftest import (
    assert_exactly_once,
    assert_projected,
    assert_settled_and_consistent,
    carebridge_process,
    resend_until_aa,
    start_listener,
    start_server,
    stop_server,
    wait_for_pollers,
)
from workers.runtime.services import Services
from workers.runtime.settings import Settings


async def test_temporal_restart_with_worker_running_loses_and_doubles_nothing(
    own_temporal: Settings, pool: asyncpg.Pool, fault_messages: int
) -> None:
    settings = own_temporal
    process, client = await start_server(settings)
    services = Services.build(settings, pool, client)
    listener, port = await start_listener(services, settings)
    worker = carebridge_process("worker", f"127.0.0.1:{settings.temporal_port}", settings)
    facility = f"TMP{uuid.uuid4().hex[:4].upper()}"
    refused = 0
    try:
        await wait_for_pollers(client, settings.task_queue)
        sender = await MllpClient.connect(port)
        for n in range(fault_messages):
            raw = a03(facility=facility, visit=f"V{n}", control_id=f"{facility}-{n}")
            if n == fault_messages // 3:
                await stop_server(process)
                down = await sender.exchange(raw)
                assert msa(down)[1] == "AR", down
                refused += 1
                process, _ = await start_server(settings)  # same database file
            refused += await resend_until_aa(sender, raw)
        await sender.close()

        await assert_projected(pool, facility, fault_messages, within=120)
        await assert_exactly_once(pool, client, facility, fault_messages)
        await assert_settled_and_consistent(pool, client, facility)
        assert worker.poll() is None, "the worker process exited when the server went away"
    finally:
        await listener.close()
        worker.terminate()
        worker.wait(timeout=30)
        if process.returncode is None:
            await stop_server(process)
    print(f"{refused} answers were AE while the Temporal server restarted")
