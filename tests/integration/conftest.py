"""A running carebridge (worker, API, MLLP listener) on the real dev server and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest_asyncio
import uvicorn
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.helpers import find_free_port
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
