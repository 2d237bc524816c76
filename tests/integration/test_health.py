"""Health and readiness: /healthz says the process is up, /readyz that PostgreSQL and Temporal
answer (503 naming what does not); a worker process serves the Temporal SDK's metrics."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
from temporalio.testing import WorkflowEnvironment

from tests.helpers import assert_eventually, find_free_port
from tests.integration.conftest import (
    RunningStack,
    carebridge_process,
    start_server,
    stop_server,
)
from workers.api import create_app
from workers.services import Services
from workers.settings import Settings


async def test_ready_when_both_answer_and_503_naming_temporal_when_it_is_down(
    stack: RunningStack, own_temporal: Settings, pool: asyncpg.Pool
) -> None:
    assert (await stack.http.get("/healthz")).json() == {"status": "ok"}
    ready = await stack.http.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"postgres": "ok", "temporal": "ok"}

    server, client = await start_server(own_temporal)
    services = Services.build(own_temporal, pool, client)
    await stop_server(server)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://cb") as http:
        started = asyncio.get_running_loop().time()
        down = await http.get("/readyz")
        assert asyncio.get_running_loop().time() - started < 6  # bounded, not a hang
        assert (await http.get("/healthz")).status_code == 200
    assert down.status_code == 503
    assert down.json()["postgres"] == "ok" and down.json()["temporal"] != "ok"


async def test_worker_process_serves_temporal_sdk_metrics(
    temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    port = find_free_port()
    worker = carebridge_process(
        "worker", temporal_env, settings, CAREBRIDGE_WORKER_METRICS_PORT=str(port)
    )
    try:

        async def scraped() -> None:
            async with httpx.AsyncClient() as http:
                try:
                    body = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.HTTPError as exc:
                    raise AssertionError(str(exc)) from exc
            assert "temporal_" in body

        await assert_eventually(scraped, within=60, interval=0.5)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
