"""Health, lifecycle and metrics of each process: /healthz says the process is up, /readyz that
PostgreSQL and Temporal answer (503 naming what does not); the API, the listener's health port
and a worker process expose the series the dashboards and alerts use; SIGTERM is graceful."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
from temporalio.testing import WorkflowEnvironment

from bench.timer_storm import STORM
from tests.helpers import MllpClient, a03, assert_eventually, find_free_port, msa, start_direct
from tests.integration.conftest import (
    RunningStack,
    assert_projected,
    carebridge_process,
    start_server,
    stop_server,
    wait_for_pollers,
)
from workers.http_server import create_app
from workers.runtime.services import Services
from workers.runtime.settings import Settings
from workflows.transition import TransitionWorkflow

DUE_AT_ONCE = STORM  # one step due at the discharge instant, escalated at once


def has_series(body: str, name: str, labels: dict[str, str]) -> bool:
    """Whether a sample of `name` carries all of `labels` (exporters add and order others)."""
    for line in body.splitlines():
        series, _, rest = line.partition("{")
        if series == name and all(f'{k}="{v}"' in rest.split("}")[0] for k, v in labels.items()):
            return True
    return False


async def scrape(port: int, *names: str, within: float = 60, **required: dict[str, str]) -> str:
    """The /metrics body on `port` once every named series (and each `required` series with
    those labels) appears in it."""

    async def check() -> str:
        async with httpx.AsyncClient() as http:
            try:
                body = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
            except httpx.HTTPError as exc:
                raise AssertionError(str(exc)) from exc
        missing = [name for name in names if name not in body]
        missing += [name for name, labels in required.items() if not has_series(body, name, labels)]
        assert not missing, missing
        return body

    return await assert_eventually(check, within=within, interval=0.5)


def stop_gracefully(process: subprocess.Popen[bytes], within: float = 45) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=within)


async def test_readiness_names_a_dependency_that_is_down_without_taking_the_pod_away(
    stack: RunningStack, own_temporal: Settings, pool: asyncpg.Pool
) -> None:
    """Issue 19 item 1: with Temporal (or PostgreSQL) away, every endpoint used to turn
    NotReady at once (503), so senders got refused connections instead of an answer they
    retry; readiness now says this process can serve, and the gauge says what answers."""
    assert (await stack.http.get("/healthz")).json() == {"status": "ok"}
    ready = await stack.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "postgres": "ok", "temporal": "ok"}

    server, client = await start_server(own_temporal)
    services = Services.build(own_temporal, pool, client)
    await stop_server(server)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://cb") as http:
        started = asyncio.get_running_loop().time()
        down = await http.get("/readyz")
        assert asyncio.get_running_loop().time() - started < 6  # bounded, not a hang
        assert (await http.get("/healthz")).status_code == 200
        gauges = (await http.get("/metrics")).text
    assert down.status_code == 200  # still serving: it answers, and says what is down
    assert down.json()["postgres"] == "ok" and down.json()["temporal"] != "ok"
    assert 'carebridge_dependency_up{dependency="temporal"} 0.0' in gauges
    assert 'carebridge_dependency_up{dependency="postgres"} 1.0' in gauges


async def test_api_metrics_show_transitions_by_status_and_the_unsettled_inbox(
    stack: RunningStack,
) -> None:
    facility = f"MET{uuid.uuid4().hex[:4].upper()}"
    assert msa((await stack.post_adt(a03(facility=facility))).text)[1] == "AA"
    await assert_projected(stack.services.pool, facility, 1, within=60)
    body = (await stack.http.get("/metrics")).text
    assert 'carebridge_transitions{status="active"}' in body
    assert "carebridge_inbox_unsettled 0.0" in body
    assert 'carebridge_adt_messages_total{ack="AA",event="A03"}' in body
    assert "carebridge_ack_latency_seconds_bucket" in body


async def test_worker_process_serves_sdk_and_carebridge_metrics_and_drains_on_sigterm(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    port = find_free_port()
    worker = carebridge_process(
        "worker", temporal_env, settings, CAREBRIDGE_WORKER_METRICS_PORT=str(port)
    )
    try:
        await wait_for_pollers(temporal_env.client, settings.task_queue)
        handle = await start_direct(
            temporal_env.client,
            settings.task_queue,
            DUE_AT_ONCE,
            facility="METRICS",
            discharged_at=datetime.now(UTC),
        )
        tid = (await handle.query(TransitionWorkflow.get_state)).transition_id
        await scrape(
            port,
            "temporal_workflow_task_schedule_to_start_latency_bucket",
            "carebridge_projection_lag_bucket",
            temporal_num_pollers={"poller_type": "workflow_task"},
            carebridge_escalations={"channel": "worklist", "level": "1"},
        )
        recorded = await pool.fetchval(
            "SELECT count(*) FROM notifications WHERE transition_id = $1", tid
        )
        assert recorded == 1
        assert stop_gracefully(worker) == 0
    finally:
        if worker.poll() is None:
            worker.kill()


async def test_listener_health_port_serves_health_readiness_and_adt_metrics(
    temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    mllp_port, health_port = find_free_port(), find_free_port()
    listener = carebridge_process(
        "listener",
        temporal_env,
        settings,
        CAREBRIDGE_MLLP_PORT=str(mllp_port),
        CAREBRIDGE_LISTENER_HEALTH_PORT=str(health_port),
    )
    try:
        await scrape(health_port, "carebridge_ack_latency_seconds")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{health_port}") as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["temporal"] == "ok"
        sender = await MllpClient.connect(mllp_port)
        assert msa(await sender.exchange(a03()))[1] == "AA"
        await sender.close()
        await scrape(health_port, 'carebridge_adt_messages_total{ack="AA",event="A03"} 1.0')
        assert stop_gracefully(listener) == 0
    finally:
        if listener.poll() is None:
            listener.kill()


async def test_listener_sigterm_answers_the_frame_in_flight_then_exits(
    own_temporal: Settings, pool: asyncpg.Pool
) -> None:
    """With Temporal down a frame stays in flight for the ACK bound; SIGTERM during it still
    gets the sender its answer (AE, so it resends later), then the process exits 0."""
    server, _ = await start_server(own_temporal)
    address = f"127.0.0.1:{own_temporal.temporal_port}"
    mllp_port, health_port = find_free_port(), find_free_port()
    listener = carebridge_process(
        "listener",
        address,
        own_temporal,
        CAREBRIDGE_MLLP_PORT=str(mllp_port),
        CAREBRIDGE_LISTENER_HEALTH_PORT=str(health_port),
        CAREBRIDGE_ACK_TIMEOUT_SECONDS="3",
    )
    try:
        await scrape(health_port, "carebridge_ack_latency_seconds")
        await stop_server(server)
        sender = await MllpClient.connect(mllp_port)
        await sender.send_raw(b"\x0b" + a03(control_id="INFLIGHT-1") + b"\x1c\x0d")
        await asyncio.sleep(1.0)  # the intake is now waiting on Temporal
        listener.send_signal(signal.SIGTERM)
        reply = await asyncio.wait_for(sender.reply(), 10)
        assert msa(reply)[1:3] == ["AR", "INFLIGHT-1"]
        assert await asyncio.to_thread(listener.wait, 30) == 0
        stored = await pool.fetchval("SELECT status FROM adt_inbox WHERE control_id = 'INFLIGHT-1'")
        assert stored == "received"  # kept, so the sender's resend is processed later
    finally:
        if listener.poll() is None:
            listener.kill()
