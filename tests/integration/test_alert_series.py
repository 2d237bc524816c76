"""Issue 19 item 8: every series an alert reads is exported, with the labels its selector
names. The Temporal SDK's from a real worker's /metrics (a non-determinism failure induced
on purpose), carebridge's from the API's; and the listener no longer exports the API's
PostgreSQL gauges (its carebridge_inbox_unsettled 0 masked a dead API)."""

from __future__ import annotations

import asyncio
import urllib.request
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest_asyncio
from fastapi import FastAPI
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from store import security
from tests.helpers import a03, assert_eventually, find_free_port
from tests.integration.test_health import has_series
from tests.tls_certificates import CertificateAuthority
from tests.unit.test_alert_rules import SDK_SERIES
from workers.api.health import health_router
from workers.http_server import create_app
from workers.runtime.services import Services
from workers.runtime.settings import Settings
from workers.runtime.temporal import metrics_runtime


@workflow.defn(sandboxed=False)
class ReplaysDifferently:
    """Schedules an activity only when replaying: every replay is a non-determinism error."""

    @workflow.run
    async def run(self) -> None:
        if workflow.unsafe.is_replaying():
            workflow.start_activity("never-runs", start_to_close_timeout=timedelta(seconds=5))
        await workflow.sleep(0.2)
        await workflow.sleep(0.2)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


async def test_a_workers_sdk_series_carry_the_labels_the_alerts_select_on(
    temporal_env: WorkflowEnvironment,
) -> None:
    port = find_free_port()
    target = temporal_env.client.service_client.config.target_host
    client = await Client.connect(target, runtime=metrics_runtime(port))
    task_queue = f"tq-{uuid.uuid4()}"
    scope = {"namespace": client.namespace, "task_queue": task_queue}
    async with Worker(
        client, task_queue=task_queue, workflows=[ReplaysDifferently], max_cached_workflows=0
    ):
        await client.start_workflow(ReplaysDifferently.run, id=task_queue, task_queue=task_queue)

        async def exported() -> None:
            body = await asyncio.to_thread(scrape, port)
            for name in SDK_SERIES:
                assert has_series(body, name, scope), name
            failed = {**scope, "failure_reason": "NonDeterminismError"}
            assert has_series(body, "temporal_workflow_task_execution_failed", failed)
            assert has_series(body, "temporal_num_pollers", {"poller_type": "workflow_task"})

        await assert_eventually(exported, within=60, interval=0.5)
        await client.get_workflow_handle(task_queue).terminate()


@pytest_asyncio.fixture
async def api_with_a_certificate(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[httpx.AsyncClient, Services, dict[str, str]]]:
    issued = CertificateAuthority(tmp_path).issue("mllp.carebridge.test", server=True)
    mine = settings.model_copy(update={"mllp_tls_cert": issued.cert, "mllp_tls_key": issued.key})
    services = Services.build(mine, pool, temporal_env.client)
    tokens = {}
    for role in ("integration", "operator"):
        _, tokens[role] = await security.create_token(
            pool, name=f"alert series {role}", subject=f"series.{role}", role=role
        )
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://carebridge") as http:
        yield http, services, tokens


async def test_the_api_exports_every_carebridge_series_the_alerts_read(
    api_with_a_certificate: tuple[httpx.AsyncClient, Services, dict[str, str]],
) -> None:
    http, _, tokens = api_with_a_certificate
    facility = f"SER{uuid.uuid4().hex[:4].upper()}"
    for n in range(2):  # two messages: a gap between them
        answer = await http.post(
            "/adt",
            content=a03(facility=facility, visit=f"V{n}", control_id=f"{facility}-{n}"),
            headers={
                "Content-Type": "x-application/hl7-v2+er7",
                "Authorization": f"Bearer {tokens['integration']}",
            },
        )
        assert "|AA|" in answer.text, answer.text
    metrics = await http.get("/metrics", headers={"Authorization": f"Bearer {tokens['operator']}"})
    body = metrics.text
    assert has_series(body, "carebridge_feed_silence_seconds", {"facility": facility})
    assert has_series(body, "carebridge_feed_usual_gap_seconds", {"facility": facility})
    assert "\ncarebridge_inbox_oldest_unsettled_seconds " in body
    assert has_series(
        body, "carebridge_certificate_expiry_timestamp_seconds", {"certificate": "mllp_server"}
    )
    for name in (
        "carebridge_inbox_unsettled",
        "carebridge_transitions",
        "carebridge_notifications_undelivered",
        "carebridge_dependency_up",
        "carebridge_adt_messages_total",
        "carebridge_ack_latency_seconds_bucket",
    ):
        assert name in body, name


async def test_the_listeners_metrics_leave_the_apis_database_gauges_out(
    api_with_a_certificate: tuple[httpx.AsyncClient, Services, dict[str, str]],
) -> None:
    _, services, _ = api_with_a_certificate
    app = FastAPI()
    app.include_router(health_router(lambda _: services, database_gauges=False))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://listener") as http:
        body = (await http.get("/metrics")).text
    assert "carebridge_ack_latency_seconds" in body  # its own series are there
    for name in ("carebridge_inbox_unsettled", "carebridge_transitions", "carebridge_feed_"):
        assert name not in body, name
