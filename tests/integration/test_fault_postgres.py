"""PostgreSQL restarted under a stream of ADT messages: messages that arrive while it is down
get AR (never AA, never a hang), the sender retries them to AA, the workflows' activities are
retried by Temporal, and afterwards every discharge has exactly one transition, projected."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from store.db import create_pool
from store.migrate import migrate
from tests.helpers import MllpClient, a03, msa
from tests.integration.conftest import (
    assert_exactly_once,
    assert_projected,
    assert_settled_and_consistent,
    resend_until_aa,
    start_listener,
)
from workers.runtime.embedded import start_embedded_postgres
from workers.runtime.services import Services
from workers.runtime.settings import Settings
from workers.worker import build_worker


@pytest_asyncio.fixture
async def own_postgres(tmp_path_factory: Any) -> AsyncIterator[tuple[Any, str]]:
    pgdata: Path = tmp_path_factory.mktemp("pgr") / "data"
    server = await asyncio.to_thread(start_embedded_postgres, pgdata, cleanup_mode="delete")
    yield server, str(server.get_uri())


def stop(server: Any) -> None:
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


def start(server: Any) -> None:
    server.ensure_postgres_running()


async def test_postgres_restart_mid_stream_loses_and_doubles_nothing(
    own_postgres: tuple[Any, str],
    temporal_env: WorkflowEnvironment,
    settings: Settings,
    fault_messages: int,
) -> None:
    server, url = own_postgres
    pool = await create_pool(url)
    await migrate(pool)
    mine = settings.model_copy(update={"database_url": SecretStr(url), "ack_timeout_seconds": 3.0})
    services = Services.build(mine, pool, temporal_env.client)
    listener, port = await start_listener(services, mine)
    facility = f"PGR{uuid.uuid4().hex[:4].upper()}"
    refused = 0
    try:
        async with build_worker(temporal_env.client, pool, mine):
            client = await MllpClient.connect(port)
            for n in range(fault_messages):
                raw = a03(facility=facility, visit=f"V{n}", control_id=f"{facility}-{n}")
                if n == fault_messages // 3:
                    await asyncio.to_thread(stop, server)
                    started = asyncio.get_running_loop().time()
                    down = await client.exchange(raw)
                    waited = asyncio.get_running_loop().time() - started
                    assert msa(down)[1] == "AR" and waited < mine.ack_timeout_seconds + 2
                    refused += 1
                    await asyncio.to_thread(start, server)
                refused += await resend_until_aa(client, raw)
            await client.close()

            await assert_projected(pool, facility, fault_messages, within=60)
            await assert_settled_and_consistent(pool, temporal_env.client, facility)
        await assert_exactly_once(pool, temporal_env.client, facility, fault_messages)
    finally:
        await listener.close()
        await pool.close()
    print(f"{refused} answers were AE while PostgreSQL restarted")
