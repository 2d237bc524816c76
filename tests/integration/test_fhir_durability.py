"""The FHIR door keeps the intake's promise (DESIGN.md invariant 1) on a Temporal dev server
of the test's own: while it is down a notification gets 503 (resend), never a 200, and its
inbox row waits; sent again once the server is back, the same row starts the transition."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx
from temporalio.client import WorkflowExecutionStatus

from ingest.fhir_examples import discharge_bundle
from schemas import keys
from tests.integration.conftest import bearer, start_server, stop_server
from workers.http_server import create_app
from workers.runtime.services import Services
from workers.runtime.settings import Settings

FHIR = {"Content-Type": "application/fhir+json"}


async def test_no_200_while_temporal_is_down_and_the_resend_starts_it(
    own_temporal: Settings, pool: asyncpg.Pool
) -> None:
    settings = own_temporal
    process, client = await start_server(settings)
    services = Services.build(settings, pool, client)
    facility, visit = f"DUR{uuid.uuid4().hex[:6].upper()}", "V-DOWN"
    body = json.dumps(discharge_bundle(datetime.now(UTC), facility=facility, visit=visit))
    headers = {**FHIR, **await bearer(pool, "feed.durable", "integration")}
    transport = httpx.ASGITransport(app=create_app(services))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://cb", timeout=60) as http:
            await stop_server(process)
            down = await http.post("/fhir/$process-message", content=body, headers=headers)
            assert down.status_code == 503, down.text
            (issue,) = down.json()["issue"]
            assert issue["code"] == "transient" and "resend it" in issue["diagnostics"]
            rows = await pool.fetch(
                "SELECT status, ack, error FROM adt_inbox WHERE sending_facility = $1", facility
            )
            assert [(r["status"], r["ack"]) for r in rows] == [("received", None)]
            assert "temporarily unable" in rows[0]["error"]

            process, _ = await start_server(settings)  # the same database file
            for _attempt in range(30):  # the sender resends; the app's client reconnects
                again = await http.post("/fhir/$process-message", content=body, headers=headers)
                if again.status_code != 503:
                    break
            assert again.status_code == 200, again.text
            assert "transition started" in again.json()["issue"][0]["diagnostics"]
        rows = await pool.fetch(
            "SELECT status FROM adt_inbox WHERE sending_facility = $1", facility
        )
        assert [r["status"] for r in rows] == ["processed"]  # the same row, settled
        secret = settings.key_secret.get_secret_value()
        tid = keys.transition_id(keys.encounter_key(secret, facility, visit))
        described = await client.get_workflow_handle(keys.workflow_id(tid)).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
    finally:
        if process.returncode is None:
            await stop_server(process)
