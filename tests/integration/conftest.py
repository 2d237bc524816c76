"""A running carebridge (worker, API, MLLP listener) on the real dev server and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest_asyncio
import uvicorn
from temporalio.testing import WorkflowEnvironment

from tests.helpers import find_free_port
from workers.api import create_app
from workers.listener import listener_for
from workers.services import Services
from workers.settings import Settings
from workers.stack import _EmbeddedUvicorn
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
