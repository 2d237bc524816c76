"""What the audit log covers (issue 18 item 10): a change is recorded before it is made (and
refused when its row cannot be written), refusals without credentials are recorded, a codec
decode names the workflows whose data it decrypted, the client address comes through trusted
proxies only, and CLI reads and changes (tokens included) are recorded like the API's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from store import security
from tests.conftest import TEST_KEYS
from tests.integration.conftest import RunningStack, discharged_and_planned, run_cli
from workers.http_server import create_app
from workers.runtime.services import Services
from workers.runtime.settings import Settings

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}


@dataclass
class Audited:
    http: httpx.AsyncClient
    services: Services
    supervisor: str  # a token
    facility: str

    @property
    def as_supervisor(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.supervisor}"}


@pytest_asyncio.fixture
async def audited(stack: RunningStack, settings: Settings) -> AsyncIterator[Audited]:
    facility = f"AUD{uuid.uuid4().hex[:5].upper()}"
    strict = settings.model_copy(update={"trusted_proxies": "127.0.0.0/8"})
    services = Services.build(strict, stack.services.pool, stack.services.client)
    _, token = await security.create_token(
        services.pool, name="sup", subject="sup.audit", role="supervisor", team=facility
    )
    transport = httpx.ASGITransport(app=create_app(services), client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cb") as http:
        yield Audited(http, services, token, facility)


async def discharge(audited: Audited) -> str:
    _, feed = await security.create_token(
        audited.services.pool, name="feed", subject="feed", role="integration"
    )
    return await discharged_and_planned(
        audited.http,
        audited.services.settings,
        audited.facility,
        adt_headers={"Authorization": f"Bearer {feed}"},
        read_headers=audited.as_supervisor,
    )


async def rows_for(pool: asyncpg.Pool, resource: str) -> list[tuple[str, str, str, str]]:
    rows = await pool.fetch(
        "SELECT actor, action, outcome, source FROM audit_log WHERE resource_id = $1 ORDER BY id",
        resource,
    )
    return [(r["actor"], r["action"], r["outcome"], r["source"]) for r in rows]


async def test_a_change_is_audited_before_it_is_made_and_refused_when_it_cannot_be(
    audited: Audited,
) -> None:
    tid = await discharge(audited)
    pool = audited.services.pool
    forwarded = {**audited.as_supervisor, "X-Forwarded-For": "203.0.113.7"}
    made = await audited.http.post(
        f"/transitions/{tid}/notes", json={"text": "a"}, headers=forwarded
    )
    assert made.status_code == 200
    rows = [r for r in await rows_for(pool, tid) if r[1].startswith("POST")]
    assert [r[2] for r in rows] == ["attempt", "200"]
    assert {r[3] for r in rows} == {"203.0.113.7"}  # through the trusted proxy
    await pool.execute("ALTER TABLE audit_log ADD CONSTRAINT no_rows CHECK (false) NOT VALID")
    try:
        refused = await audited.http.post(
            f"/transitions/{tid}/notes", json={"text": "unaudited"}, headers=audited.as_supervisor
        )
    finally:
        await pool.execute("ALTER TABLE audit_log DROP CONSTRAINT no_rows")
    assert refused.status_code == 503 and "nothing was changed" in refused.text
    state = await audited.http.get(f"/transitions/{tid}", headers=audited.as_supervisor)
    assert [n["text"] for n in state.json()["notes"]] == ["a"]  # the refused note is not there


async def test_refusals_without_credentials_and_codec_decodes_are_recorded(
    audited: Audited,
) -> None:
    tid = await discharge(audited)
    anonymous = await audited.http.get(f"/transitions/{tid}")
    assert anonymous.status_code == 401
    assert ("anonymous", "GET /transitions/{transition_id}", "401", "127.0.0.1") in await rows_for(
        audited.services.pool, tid
    )
    history = await audited.services.client.get_workflow_handle(
        keys.workflow_id(tid)
    ).fetch_history()
    first = history.events[0].workflow_execution_started_event_attributes.input
    from google.protobuf import json_format

    decoded = await audited.http.post(
        "/codec/decode",
        content=json_format.MessageToJson(first),
        headers={**audited.as_supervisor, "Content-Type": "application/json"},
    )
    assert decoded.status_code == 200
    workflow = keys.workflow_id(tid)
    actions = await rows_for(audited.services.pool, workflow)
    assert ("sup.audit", "POST /codec/decode", "200", "127.0.0.1") in actions


async def test_cli_reads_and_changes_are_in_the_audit_log(
    audited: Audited, temporal_env: WorkflowEnvironment, database_url: str
) -> None:
    tid = await discharge(audited)
    env = {
        "CAREBRIDGE_DATABASE_URL": database_url,
        "CAREBRIDGE_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "CAREBRIDGE_LOG_LEVEL": "WARNING",
        "CAREBRIDGE_CODEC_KEYS": TEST_KEYS,
    }
    noted = await run_cli(env, "note", tid, "called back", "--by", "rn.cli")
    assert noted.exit_code == 0, noted.output
    shown = await run_cli(env, "show", tid)
    assert shown.exit_code == 0, shown.output
    created = await run_cli(
        env,
        "tokens",
        "create",
        "--name",
        f"t{uuid.uuid4().hex[:6]}",
        "--subject",
        "x",
        "--role",
        "auditor",
    )
    assert created.exit_code == 0, created.output
    rows = await rows_for(audited.services.pool, tid)
    cli_rows = [
        (actor, action, outcome)
        for actor, action, outcome, source in rows
        if source.startswith("cli:")
    ]
    assert ("rn.cli", "cli add_note", "attempt") in cli_rows
    assert ("rn.cli", "cli add_note", "ok") in cli_rows
    assert any(action == "cli show" and outcome == "ok" for _, action, outcome in cli_rows)
    token_rows = await audited.services.pool.fetch(
        "SELECT outcome FROM audit_log WHERE action LIKE 'cli tokens create auditor x' ORDER BY id"
    )
    assert [r["outcome"] for r in token_rows][-2:] == ["attempt", "ok"]
