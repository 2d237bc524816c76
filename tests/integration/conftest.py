"""A running carebridge (worker, API, MLLP listener) on the real dev server and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest_asyncio
import uvicorn
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.conftest import TEST_KEYS
from tests.helpers import assert_eventually, find_free_port
from workers import embedded
from workers.api import create_app
from workers.listener import listener_for
from workers.services import Services
from workers.settings import Settings
from workers.stack import _EmbeddedUvicorn
from workers.temporal import connect, ensure_search_attributes
from workers.worker import build_worker


@dataclass
class RunningStack:
    services: Services
    http: httpx.AsyncClient
    mllp_port: int

    async def post_adt(self, raw: bytes) -> httpx.Response:
        return await self.http.post(
            "/adt", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7"}
        )


@pytest_asyncio.fixture
async def stack(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[RunningStack]:
    api_port, mllp_port = find_free_port(), find_free_port()
    services = Services.build(settings, pool, temporal_env.client)
    listener = listener_for(services.intake, settings)
    await listener.start("127.0.0.1", mllp_port)
    api = _EmbeddedUvicorn(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=api_port, log_config=None)
    )
    async with build_worker(temporal_env.client, pool, settings):
        serving = asyncio.create_task(api.serve())
        while not api.started:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=30) as http:
            yield RunningStack(services=services, http=http, mllp_port=mllp_port)
        api.should_exit = True
        await serving
    await listener.close()


@pytest_asyncio.fixture
async def own_temporal(tmp_path: Path, settings: Settings) -> AsyncIterator[Settings]:
    """A dev server of this test's own, with a persistent database, that the test can stop."""
    mine = settings.model_copy(
        update={
            "state_dir": tmp_path,
            "temporal_port": find_free_port(),
            "temporal_ui_port": find_free_port(),
            "ack_timeout_seconds": 3.0,
        }
    )
    yield mine


async def start_server(settings: Settings) -> tuple[asyncio.subprocess.Process, Client]:
    process = await embedded.start_temporal_dev_server(settings)
    for _ in range(200):
        try:
            client = await connect(settings)
            await ensure_search_attributes(client, settings.temporal_namespace)
            return process, client
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError("dev server did not start")


async def stop_server(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    await process.wait()


def carebridge_process(
    command: str, temporal_env: WorkflowEnvironment, settings: Settings, **extra: str
) -> subprocess.Popen[bytes]:
    """A `carebridge <command>` process against the session's Temporal and database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env.update(
        CAREBRIDGE_TEMPORAL_ADDRESS=temporal_env.client.service_client.config.target_host,
        CAREBRIDGE_DATABASE_URL=str(settings.database_url),
        CAREBRIDGE_TASK_QUEUE=settings.task_queue,
        CAREBRIDGE_CODEC_KEYS=TEST_KEYS,
        CAREBRIDGE_LOG_LEVEL="WARNING",
        **extra,
    )
    return subprocess.Popen(
        [embedded.find_binary("carebridge"), command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def assert_projected(pool: asyncpg.Pool, facility: str, count: int, within: float) -> None:
    """Eventually `count` transitions of the facility in the projection, each planned."""

    async def check() -> None:
        rows = await pool.fetch("SELECT steps FROM transitions WHERE facility = $1", facility)
        assert len(rows) == count and all(row["steps"] != "[]" for row in rows)

    await assert_eventually(check, within=within, interval=0.5)


async def assert_exactly_once(
    pool: asyncpg.Pool, client: Client, facility: str, count: int
) -> None:
    """Each message stored once, each transition started once: nothing lost, nothing doubled."""
    inbox = await pool.fetch(
        "SELECT control_id, count(*) AS n FROM adt_inbox WHERE sending_facility = $1 "
        "GROUP BY control_id",
        facility,
    )
    assert len(inbox) == count and all(row["n"] == 1 for row in inbox)
    workflows = [
        wf.id
        async for wf in client.list_workflows(
            f"WorkflowType = 'TransitionWorkflow' AND CbFacility = '{facility}'"
        )
    ]
    assert len(workflows) == len(set(workflows)) == count
