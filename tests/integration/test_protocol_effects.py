"""Protocol effects on the real servers: escalations recorded in the notifications outbox,
the timeline in PostgreSQL, a cancelled discharge (A13) and 'no protocol applies'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from tests.helpers import a03, assert_eventually, msa, transition_of
from tests.integration.conftest import RunningStack
from workers.runtime.settings import Settings


async def test_overdue_steps_escalate_into_the_notifications_outbox(
    stack: RunningStack, settings: Settings
) -> None:
    # A home-health discharge that arrives on time, 3 seconds before its 24-hour referral
    # deadline (a deadline already over on arrival climbs no ladder: test_late_discharges).
    discharged = datetime.now(UTC) - timedelta(hours=24) + timedelta(seconds=3)
    response = await stack.post_adt(
        a03(facility="ESCAL8", visit="V8", disposition="06", discharged=discharged)
    )
    assert msa(response.text)[1] == "AA"
    tid = transition_of(settings, "ESCAL8", "V8")

    async def escalated() -> None:
        rows = await stack.services.pool.fetch(
            "SELECT step_id, level, role, channel FROM notifications WHERE transition_id = $1 "
            "ORDER BY step_id, level",
            tid,
        )
        assert [(r["step_id"], r["level"], r["role"], r["channel"]) for r in rows] == [
            ("home_health_referral", 1, "care_manager", "worklist"),
        ]

    await assert_eventually(escalated, within=30)

    async def projected() -> None:
        row = await stack.services.pool.fetchrow(
            "SELECT status, escalation_level, overdue_steps FROM transitions "
            "WHERE transition_id = $1",
            tid,
        )
        assert row is not None and row["status"] == "active"
        assert row["escalation_level"] == 1
        assert list(row["overdue_steps"]) == ["home_health_referral"]

    await assert_eventually(projected)
    kinds = [
        r["kind"]
        for r in await stack.services.pool.fetch(
            "SELECT kind FROM transition_events WHERE transition_id = $1 ORDER BY seq", tid
        )
    ]
    assert kinds[0] == "started"
    assert "escalated" in kinds and "overdue" in kinds


async def test_a13_for_the_visit_cancels_its_transition(
    stack: RunningStack, temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    await stack.post_adt(a03(facility="CANCEL1", visit="V13", control_id="A03-1"))
    cancel = (
        a03(facility="CANCEL1", visit="V13", control_id="A13-1")
        .replace(b"ADT^A03^ADT_A03", b"ADT^A13^ADT_A01")
        .replace(b"EVN|A03", b"EVN|A13")
    )
    response = await stack.post_adt(cancel)
    assert msa(response.text)[1:4] == ["AA", "A13-1", "A13 delivered to the transition"]
    handle = temporal_env.client.get_workflow_handle(
        keys.workflow_id(transition_of(settings, "CANCEL1", "V13"))
    )

    async def cancelled() -> None:
        description = await handle.describe()
        assert description.status == WorkflowExecutionStatus.COMPLETED

    await assert_eventually(cancelled)
    row = await stack.services.pool.fetchrow(
        "SELECT status FROM transitions WHERE transition_id = $1",
        transition_of(settings, "CANCEL1", "V13"),
    )
    assert row is not None and row["status"] == "cancelled"


async def test_a13_without_a_transition_is_acknowledged_and_kept(stack: RunningStack) -> None:
    cancel = a03(facility="CANCEL2", visit="V99", control_id="A13-2").replace(
        b"ADT^A03^ADT_A03", b"ADT^A13^ADT_A01"
    )
    response = await stack.post_adt(cancel)
    assert msa(response.text)[1] == "AA"
    assert "kept for 72 hours" in msa(response.text)[3]  # applied if its A03 comes (item 10)


async def test_discharge_no_protocol_applies_to_is_recorded_not_dropped(
    stack: RunningStack,
) -> None:
    raw = a03(facility="NOPROTO", disposition="09", control_id="NP-1")
    response = await stack.post_adt(raw)
    assert msa(response.text)[1:3] == ["AA", "NP-1"]
    assert msa(response.text)[3].startswith("no protocol applies: disposition 09")
    row = await stack.services.pool.fetchrow(
        "SELECT status, transition_id FROM adt_inbox WHERE sending_facility = 'NOPROTO'"
    )
    assert row is not None
    assert (row["status"], row["transition_id"]) == ("no_protocol", None)
