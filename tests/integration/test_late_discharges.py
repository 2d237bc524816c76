"""Discharges that reach carebridge late, over MLLP on the real stack: steps already past
their deadlines are missed before arrival and page nobody; a discharge whose period is over
starts nothing; a whole backlog replayed at once sends no e-mail and no page."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from schemas.protocol_library import load_library
from store import inbox
from store.reports import report
from tests.helpers import MllpClient, a03, assert_eventually, msa, start_direct, transition_of
from tests.integration.conftest import (
    Hooks,
    Mailbox,
    RunningStack,
    copy_protocols,
    start_listener,
    worker_with_channels,
)
from workers.runtime.services import Services
from workers.runtime.settings import Settings
from workflows.transition import TransitionWorkflow


def hl7_time(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def days_ago(days: float) -> str:
    return hl7_time(datetime.now(UTC) - timedelta(days=days))


async def notifications_of(pool: asyncpg.Pool, transitions: list[str]) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT transition_id, step_id, level, channel FROM notifications "
        "WHERE transition_id = ANY($1::text[]) ORDER BY transition_id, level",
        transitions,
    )


async def test_a_discharge_eleven_days_late_misses_its_contact_and_pages_nobody(
    stack: RunningStack, settings: Settings
) -> None:
    facility, visit = f"LATE{uuid.uuid4().hex[:6].upper()}", "V-LATE-11"
    client = await MllpClient.connect(stack.mllp_port)
    try:
        ack = await client.exchange(a03(facility=facility, visit=visit, discharged=days_ago(11)))
    finally:
        await client.close()
    assert msa(ack)[1] == "AA", ack
    tid = transition_of(settings, facility, visit)
    handle = stack.services.client.get_workflow_handle_for(
        TransitionWorkflow.run, keys.workflow_id(tid)
    )

    async def planned_and_published() -> Any:
        state = await handle.query(TransitionWorkflow.get_state)
        assert state.period_ends_at is not None
        row = await stack.services.pool.fetchrow(
            "SELECT status, steps FROM transitions WHERE transition_id = $1", tid
        )
        assert row is not None and row["steps"] != "[]"
        assert await notifications_of(stack.services.pool, [tid])  # the arrived-late notice
        return state

    state = await assert_eventually(planned_and_published, within=30)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    steps = {step.step_id: step for step in state.steps}
    contact = steps["interactive_contact"]
    assert contact.missed_before_arrival and contact.escalation_level == 0
    assert contact.due_at is not None and state.received_at is not None
    assert contact.due_at < state.received_at
    assert not steps["follow_up_visit"].missed_before_arrival  # day 14 is still ahead

    await asyncio.sleep(2)  # time for any (wrong) escalation to be written
    rows = await notifications_of(stack.services.pool, [tid])
    assert [(r["level"], r["channel"]) for r in rows] == [(0, "worklist")]

    # The TCM report on the open transition says why it cannot be billed.
    discharged_on = datetime.now(UTC).date() - timedelta(days=12)
    tcm = await report(
        stack.services.pool,
        stack.services.library,
        "tcm",
        discharged_on,
        datetime.now(UTC).date(),
        facility,
    )
    [row] = tcm["rows"]
    assert row["tcm_code"] == "not eligible"
    assert "had passed before the discharge arrived" in row["tcm_reasons"]


async def test_a_discharge_from_2013_is_acknowledged_too_old_and_starts_nothing(
    stack: RunningStack, settings: Settings
) -> None:
    facility, visit = f"OLD{uuid.uuid4().hex[:6].upper()}", "V-2013"
    control = f"OLD-{uuid.uuid4().hex[:8]}"
    client = await MllpClient.connect(stack.mllp_port)
    try:
        ack = await client.exchange(
            a03(facility=facility, visit=visit, control_id=control, discharged="20130612101500")
        )
    finally:
        await client.close()
    fields = msa(ack)
    assert fields[1] == "AA", ack
    assert fields[3].startswith("too old: the transition period ended 2013-07-11"), ack

    tid = transition_of(settings, facility, visit)
    try:
        await stack.services.client.get_workflow_handle(keys.workflow_id(tid)).describe()
        raise AssertionError("a workflow was started for a discharge from 2013")
    except RPCError:
        pass
    assert await notifications_of(stack.services.pool, [tid]) == []
    kept = await inbox.list_messages(stack.services.pool, status="too_old", limit=500)
    [mine] = [m for m in kept if m["control_id"] == control]
    assert mine["sending_facility"] == facility and mine["transition_id"] is None
    assert mine["decision"].startswith("too old")


@dataclass
class Backlog:
    services: Services
    mailbox: Mailbox
    hooks: Hooks
    port: int


@pytest_asyncio.fixture
async def backlog(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> AsyncIterator[Backlog]:
    """The shipped protocols with every escalation role given an address, a local SMTP server
    and webhook receiver behind the email and page channels, a worker and an MLLP listener."""

    def recipients(site: dict[str, Any]) -> None:
        site["notifications"]["recipients"] = {
            role: [f"{role}@example.test"]
            for role in ("care_manager", "supervisor", "medical_director", "pharmacist")
        }

    protocols = copy_protocols(tmp_path, recipients)
    async with worker_with_channels(temporal_env.client, pool, settings, protocols) as (
        services,
        mailbox,
        hooks,
    ):
        hooks.fail_first = False
        listener, port = await start_listener(services, services.settings)
        try:
            yield Backlog(services, mailbox, hooks, port)
        finally:
            await listener.close()


async def test_a_replayed_backlog_of_200_discharges_sends_no_email_and_no_page(
    backlog: Backlog,
) -> None:
    facility = f"BKL{uuid.uuid4().hex[:6].upper()}"
    # A month of discharges replayed at once: homes, home health, AMA, SNF; 3 to 40 days old.
    dispositions = ("01", "06", "07", "03")
    messages = [
        (
            f"V{n:04d}",
            a03(
                facility=facility,
                visit=f"V{n:04d}",
                disposition=dispositions[n % 4],
                discharged=days_ago(3 + (n * 37 % 38)),
            ),
        )
        for n in range(200)
    ]

    async def send(batch: list[tuple[str, bytes]]) -> list[str]:
        client = await MllpClient.connect(backlog.port)
        try:
            return [msa(await client.exchange(raw))[1] for _, raw in batch]
        finally:
            await client.close()

    codes = await asyncio.gather(*(send(messages[i::4]) for i in range(4)))
    assert [code for batch in codes for code in batch] == ["AA"] * 200

    pool = backlog.services.pool
    statuses = await pool.fetch(
        "SELECT status, count(*) AS n FROM adt_inbox WHERE sending_facility = $1 GROUP BY status",
        facility,
    )
    counted = {row["status"]: row["n"] for row in statuses}
    assert set(counted) == {"processed", "too_old"} and sum(counted.values()) == 200
    started = [transition_of(backlog.services.settings, facility, visit) for visit, _ in messages]

    async def all_planned() -> None:
        planned = await pool.fetchval(
            "SELECT count(*) FROM transitions WHERE facility = $1 AND steps <> '[]'", facility
        )
        assert planned == counted["processed"]

    await assert_eventually(all_planned, within=120, interval=0.5)

    # A control that does escalate (started without an arrival time, 10 days overdue): once
    # its e-mail and page are in, the receivers are live and the backlog had its chance.
    library = load_library(backlog.services.settings.protocols_dir)
    control = await start_direct(
        backlog.services.client,
        backlog.services.settings.task_queue,
        library.latest("discharge-home"),
        facility=f"CTL{uuid.uuid4().hex[:6].upper()}",
        discharged_at=datetime.now(UTC) - timedelta(days=10),
    )
    control_id = (await control.query(TransitionWorkflow.get_state)).transition_id

    async def control_escalated() -> None:
        assert any(control_id in str(m.get_payload()) for m in backlog.mailbox.messages)
        assert any(control_id.encode() in body for _, body in backlog.hooks.calls)

    await assert_eventually(control_escalated, within=60, interval=0.5)
    await asyncio.sleep(2)
    await control.terminate("test over")

    backlog_mail = [
        m for m in backlog.mailbox.messages if any(t in str(m.get_payload()) for t in started)
    ]
    backlog_hooks = [b for _, b in backlog.hooks.calls if any(t.encode() in b for t in started)]
    assert (len(backlog_mail), len(backlog_hooks)) == (0, 0)
    levels = {(r["level"], r["channel"]) for r in await notifications_of(pool, started)}
    assert levels == {(0, "worklist")}  # one "arrived late" notice each, nothing else
