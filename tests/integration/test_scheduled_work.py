"""Notification channels (worklist, SMTP e-mail, signed webhook retried by Temporal), the
daily digest, the consistency sweep and the Temporal Schedules that run them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from schemas.maintenance import DigestResult, SweepReport
from schemas.protocol_library import load_library
from store import notifications
from tests.helpers import a03, assert_eventually
from tests.integration.conftest import (
    SHIPPED_PROTOCOLS,
    WEBHOOK_SECRET,
    Hooks,
    Mailbox,
    bearer,
    copy_protocols,
    start_server,
    stop_server,
    worker_with_channels,
)
from workers.http_server import create_app
from workers.runtime.schedules import DIGEST_SCHEDULE, SWEEP_SCHEDULE, ensure_schedules
from workers.runtime.services import Services
from workers.runtime.settings import Settings
from workflows.digest import DigestWorkflow
from workflows.sweep import SweepWorkflow

# Due an hour after the discharge, every level of its ladder at once.
QUICK_ESCALATION = """
id: quick-escalation
version: 1
title: one step due an hour after the discharge, three levels at the deadline
applies_to: {dispositions: ["01"]}
tcm: false
period_days: 30
steps:
  - id: interactive_contact
    title: call
    due: {unit: hours, amount: 1}
    escalation:
      - {level: 1, role: care_manager, channel: worklist}
      - {level: 2, role: supervisor, channel: email}
      - {level: 3, role: medical_director, channel: page}
"""


@dataclass
class Harness:
    services: Services
    mailbox: Mailbox
    hooks: Hooks
    facility: str


@pytest_asyncio.fixture
async def harness(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> AsyncIterator[Harness]:
    facility = f"NTF{uuid.uuid4().hex[:5].upper()}"

    def quick_protocol_and_recipients(site: dict[str, Any]) -> None:
        site["selection"].insert(0, {"protocol": "quick-escalation", "dispositions": ["01"]})
        site["notifications"]["recipients"] = {
            "supervisor": ["supervisor@example.test"],
            facility: ["team@example.test"],
            f"{facility}B": ["team-b@example.test"],
        }

    protocols = copy_protocols(tmp_path, quick_protocol_and_recipients)
    (protocols / "quick-escalation.yaml").write_text(QUICK_ESCALATION)
    async with worker_with_channels(temporal_env.client, pool, settings, protocols) as running:
        yield Harness(*running, facility)


async def start_overdue_transition(harness: Harness, facility: str | None = None) -> str:
    """A discharge that arrives on time, 2 seconds before its one-hour deadline (a discharge
    that arrives after a deadline climbs no ladder: see test_late_discharges)."""
    facility = facility or harness.facility
    when = (datetime.now(UTC) - timedelta(hours=1) + timedelta(seconds=2)).strftime(
        "%Y%m%d%H%M%S+0000"
    )
    visit = f"V{uuid.uuid4().hex[:6]}"
    result = await harness.services.intake.handle(
        a03(facility=facility, visit=visit, discharged=when, mrn="MRN-SECRET-77")
    )
    assert result.code == "AA", result.ack
    secret = harness.services.settings.key_secret.get_secret_value()
    return keys.transition_id(keys.encounter_key(secret, facility, visit))


async def test_escalations_go_out_by_email_and_signed_webhook_with_retries(
    harness: Harness,
) -> None:
    tid = await start_overdue_transition(harness)

    async def all_delivered() -> None:
        rows = await harness.services.pool.fetch(
            "SELECT level, channel, delivered_at FROM notifications "
            "WHERE transition_id = $1 AND step_id = 'interactive_contact' ORDER BY level",
            tid,
        )
        assert [(r["level"], r["channel"]) for r in rows] == [
            (1, "worklist"),
            (2, "email"),
            (3, "page"),
        ]
        assert all(r["delivered_at"] is not None for r in rows)

    await assert_eventually(all_delivered, within=30)
    mails = [
        m
        for m in harness.mailbox.messages
        if tid in m.get_payload() and "interactive_contact" in m["Subject"]
    ]
    assert [m["To"] for m in mails] == ["supervisor@example.test"]
    assert "interactive_contact overdue: level 2" in mails[0]["Subject"]
    assert "MRN-SECRET-77" not in mails[0].as_string()

    pages = [(h, b) for h, b in harness.hooks.calls if tid.encode() in b and b"interactive" in b]
    assert len(pages) == 2  # the first delivery got a 503; Temporal retried the activity
    keys_seen = {h["idempotency-key"] for h, _ in pages}
    assert len(keys_seen) == 1 and keys_seen.pop().startswith(f"{tid}:interactive_contact:3:")
    for headers, body in pages:
        expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-carebridge-signature"] == expected
        assert b"MRN-SECRET-77" not in body


async def test_daily_digest_lists_overdue_work_per_team(
    harness: Harness, temporal_env: WorkflowEnvironment
) -> None:
    tid = await start_overdue_transition(harness)

    async def escalated() -> None:
        row = await harness.services.pool.fetchrow(
            "SELECT overdue_steps FROM transitions WHERE transition_id = $1", tid
        )
        assert row is not None and row["overdue_steps"]

    await assert_eventually(escalated, within=30)
    result: DigestResult = await temporal_env.client.execute_workflow(
        DigestWorkflow.run,
        id=f"digest-{uuid.uuid4()}",
        task_queue=harness.services.settings.task_queue,
    )
    assert result.delivered >= 1 and result.overdue >= 1
    digests = [m for m in harness.mailbox.messages if m["To"] == "team@example.test"]
    assert len(digests) == 1
    assert f"[carebridge] {harness.facility}: 1 overdue" in digests[0]["Subject"]
    assert tid in digests[0].get_payload() and "MRN-SECRET-77" not in digests[0].as_string()


async def test_sweep_repairs_a_missing_row_and_a_stale_one(
    harness: Harness, temporal_env: WorkflowEnvironment
) -> None:
    missing = await start_overdue_transition(harness)
    stale = await start_overdue_transition(harness)
    pool = harness.services.pool

    async def projected() -> None:
        count = await pool.fetchval(
            "SELECT count(*) FROM transitions WHERE transition_id = ANY($1::text[])",
            [missing, stale],
        )
        assert count == 2

    await assert_eventually(projected)
    await temporal_env.client.get_workflow_handle(keys.workflow_id(stale)).terminate("test")
    await pool.execute("DELETE FROM transitions WHERE transition_id = $1", missing)

    sweep = await temporal_env.client.start_workflow(
        SweepWorkflow.run,
        id=f"sweep-{uuid.uuid4()}",
        task_queue=harness.services.settings.task_queue,
    )
    report: SweepReport = await sweep.result()
    assert missing in report.republished
    assert stale in report.closed
    history = await sweep.fetch_history()
    [scheduled] = [
        e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert scheduled.retry_policy.maximum_attempts == 5  # a failing sweep gives up, reported
    assert scheduled.schedule_to_close_timeout.ToTimedelta() == timedelta(hours=1)

    async def repaired() -> None:
        rows = {
            r["transition_id"]: r["status"]
            for r in await pool.fetch(
                "SELECT transition_id, status FROM transitions "
                "WHERE transition_id = ANY($1::text[])",
                [missing, stale],
            )
        }
        assert rows == {missing: "active", stale: "terminated"}

    await assert_eventually(repaired)


async def test_schedules_are_created_once_and_updated_in_place(
    temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    site = load_library(SHIPPED_PROTOCOLS).site
    client = temporal_env.client
    created = await ensure_schedules(client, site, settings.task_queue)
    assert created == sorted([DIGEST_SCHEDULE, SWEEP_SCHEDULE])
    await ensure_schedules(client, site, settings.task_queue)  # again: no error, no copy
    digest = await client.get_schedule_handle(DIGEST_SCHEDULE).describe()
    calendar = digest.schedule.spec.calendars[0]
    assert (calendar.hour[0].start, calendar.minute[0].start) == (7, 30)
    assert digest.schedule.spec.time_zone_name == "America/New_York"
    ids = [s.id async for s in await client.list_schedules()]
    assert ids.count(DIGEST_SCHEDULE) == 1 and ids.count(SWEEP_SCHEDULE) == 1


async def test_a_paused_schedule_stays_paused_when_a_worker_starts(
    own_temporal: Settings,
) -> None:
    """On a dev server of its own: the session's server can be slow to apply a pause after
    the fault tests have loaded it."""
    site = load_library(SHIPPED_PROTOCOLS).site
    process, client = await start_server(own_temporal)
    try:
        await ensure_schedules(client, site, own_temporal.task_queue)
        sweep = client.get_schedule_handle(SWEEP_SCHEDULE)
        await sweep.pause(note="database maintenance tonight")

        async def paused() -> None:  # the scheduler applies a pause shortly after it is asked
            assert (await sweep.describe()).schedule.state.paused

        await assert_eventually(paused)
        later = site.model_copy(
            update={
                "notifications": site.notifications.model_copy(update={"sweep_time": time(3, 5)})
            }
        )
        await ensure_schedules(client, later, own_temporal.task_queue)  # a worker (re)starts
        described = await sweep.describe()
        assert described.schedule.state.paused
        assert described.schedule.state.note == "database maintenance tonight"
        calendar = described.schedule.spec.calendars[0]
        assert (calendar.hour[0].start, calendar.minute[0].start) == (3, 5)  # spec updated
    finally:
        await stop_server(process)


async def test_a_page_the_webhook_refuses_is_recorded_undelivered_and_the_ladder_goes_on(
    harness: Harness,
) -> None:
    harness.hooks.fail_first = False
    harness.hooks.status = 410  # gone: retrying for a day would not change it
    tid = await start_overdue_transition(harness)
    pool = harness.services.pool

    async def recorded() -> None:
        row = await pool.fetchrow(
            "SELECT escalation_level FROM transitions WHERE transition_id = $1", tid
        )
        assert row is not None and row["escalation_level"] == 3  # the ladder went on
        kinds = [
            r["detail"]
            for r in await pool.fetch(
                "SELECT detail FROM transition_events WHERE transition_id = $1 "
                "AND kind = 'notification_failed'",
                tid,
            )
        ]
        assert kinds == [
            "level 3 via page: not delivered (webhook answered 410); kept in the undelivered list"
        ]

    await assert_eventually(recorded, within=30)
    await asyncio.sleep(2)  # a retry would come within a second or two
    pages = [b for _, b in harness.hooks.calls if tid.encode() in b]
    assert len(pages) == 1  # refused once, not retried
    left = [n for n in await notifications.undelivered(pool, 500) if n["transition_id"] == tid]
    assert [(n["level"], n["channel"]) for n in left] == [(3, "page")]

    # The receiving side is fixed; the operator redelivers it, twice (a retried request).
    harness.hooks.status = 204
    transport = httpx.ASGITransport(app=create_app(harness.services))
    operator = await bearer(harness.services.pool, "ops.on.call", "operator")
    async with httpx.AsyncClient(
        transport=transport, base_url="http://carebridge", headers=operator
    ) as api:
        listed = (await api.get("/notifications/undelivered", params={"limit": 500})).json()
        mine = [n for n in listed if n["transition_id"] == tid]
        assert [n["failure"] for n in mine] == ["webhook answered 410"]
        first = await api.post(f"/notifications/{mine[0]['id']}/redeliver")
        again = await api.post(f"/notifications/{mine[0]['id']}/redeliver")
        unknown = await api.post("/notifications/999999999/redeliver")
    assert first.status_code == 200 and first.json()["delivered"] is True, first.text
    assert again.json() == {**first.json(), "already_delivered": True}
    assert unknown.status_code == 404
    pages = [(h, b) for h, b in harness.hooks.calls if tid.encode() in b]
    assert len(pages) == 2  # the refused one and the one redelivery, with the same key
    assert pages[0][0]["idempotency-key"] == pages[1][0]["idempotency-key"]
    assert not [n for n in await notifications.undelivered(pool, 500) if n["transition_id"] == tid]


async def test_a_digest_that_fails_for_one_team_is_retried_for_that_team_only(
    harness: Harness, temporal_env: WorkflowEnvironment
) -> None:
    second_team = f"{harness.facility}B"
    mine = [
        await start_overdue_transition(harness),
        await start_overdue_transition(harness, second_team),
    ]

    async def escalated() -> None:
        rows = await harness.services.pool.fetch(
            "SELECT overdue_steps FROM transitions WHERE transition_id = ANY($1::text[])", mine
        )
        assert len(rows) == 2 and all(row["overdue_steps"] for row in rows)

    await assert_eventually(escalated, within=30)
    harness.mailbox.busy.add("team-b@example.test")  # 450 on every try today
    run = temporal_env.client.execute_workflow(
        DigestWorkflow.run,
        id=f"digest-{uuid.uuid4()}",
        task_queue=harness.services.settings.task_queue,
    )
    result: DigestResult = await asyncio.wait_for(run, timeout=60)  # bounded: it gives up
    assert second_team in result.undelivered and harness.facility not in result.undelivered

    def digests_to(address: str) -> list[Message]:
        return [m for m in harness.mailbox.messages if m["To"] == address]

    assert len(digests_to("team@example.test")) == 1  # not again at each of the 4 tries
    assert digests_to("team-b@example.test") == []
    left = await notifications.undelivered_digests(harness.services.pool)
    [why] = [d["failure"] for d in left if d["team"] == second_team]
    assert why.startswith("SMTPRecipientsRefused") and "450" in why, why

    harness.mailbox.busy.clear()  # the mailbox is back; today's digest runs again
    again: DigestResult = await temporal_env.client.execute_workflow(
        DigestWorkflow.run,
        id=f"digest-{uuid.uuid4()}",
        task_queue=harness.services.settings.task_queue,
    )
    assert second_team not in again.undelivered
    assert len(digests_to("team@example.test")) == 1  # already had today's
    assert len(digests_to("team-b@example.test")) == 1
    left = await notifications.undelivered_digests(harness.services.pool)
    assert not [d for d in left if d["team"] in (harness.facility, second_team)]
