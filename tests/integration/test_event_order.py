"""Out-of-order delivery over a real MLLP connection (issue 15, item 10): a visit event that
arrives before its discharge is kept and applied, in event-time order, when the A03 starts the
transition; one older than the state it would change is recorded, not applied."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from schemas import keys
from schemas.transition import TransitionState, TransitionStatus
from tests.helpers import MllpClient, a03, assert_eventually, msa, with_event, with_field
from tests.integration.conftest import RunningStack
from workers.runtime.settings import Settings
from workflows.transition import TransitionWorkflow

KEPT = "no transition for this visit yet: kept for 72 hours and applied when the discharge arrives"


class Visit:
    """One visit of one patient at a facility of its own, and its messages at given times."""

    def __init__(self, settings: Settings) -> None:
        self.facility = f"ORD{uuid.uuid4().hex[:8].upper()}"
        self.visit = "V-ORDER"
        self.now = datetime.now(UTC).replace(microsecond=0)  # messages are timed from it
        secret = settings.key_secret.get_secret_value()
        self.transition = keys.transition_id(keys.encounter_key(secret, self.facility, self.visit))

    def discharge(self, at: datetime) -> bytes:
        return a03(facility=self.facility, visit=self.visit, mrn="ORD-MRN", now=at)

    def event(self, trigger: str, at: datetime, phone: str | None = None) -> bytes:
        """An A08/A13 ... of the visit whose MSH-7 and EVN-2 are `at`, with a PID-13 number."""
        raw = with_event(self.discharge(at), trigger)
        if phone:
            raw = with_field(raw, "PID", 13, f"^PRN^PH^^1^{phone[:3]}^{phone[3:]}")
        return raw


def handle_of(
    stack: RunningStack, transition: str
) -> WorkflowHandle[TransitionWorkflow, TransitionState]:
    return stack.services.client.get_workflow_handle_for(
        TransitionWorkflow.run, keys.workflow_id(transition)
    )


def control_id_of(raw: bytes) -> str:
    return raw.split(b"\r")[0].split(b"|")[9].decode()


async def inbox_row(pool: asyncpg.Pool, raw: bytes) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT status, decision, transition_id FROM adt_inbox WHERE control_id = $1",
        control_id_of(raw),
    )
    assert row is not None
    return row


async def assert_numbers(stack: RunningStack, transition: str, numbers: list[str]) -> None:
    async def updated() -> None:
        state = await handle_of(stack, transition).query(TransitionWorkflow.get_state)
        assert state.contact_numbers == numbers

    await assert_eventually(updated)


async def send(stack: RunningStack, *messages: bytes) -> list[str]:
    client = await MllpClient.connect(stack.mllp_port)
    try:
        return [msa(await client.exchange(raw))[3] for raw in messages]
    finally:
        await client.close()


async def test_an_a13_before_its_a03_cancels_the_transition_the_a03_starts(
    stack: RunningStack, settings: Settings
) -> None:
    visit = Visit(settings)
    cancel = visit.event("A13", visit.now - timedelta(minutes=5))
    kept, started = await send(stack, cancel, visit.discharge(visit.now - timedelta(minutes=10)))
    assert kept == KEPT
    assert started == "transition started (discharge-home); kept events: 1 delivered"
    handle = handle_of(stack, visit.transition)

    async def closed() -> None:
        assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

    await assert_eventually(closed)
    assert (await handle.result()).status == TransitionStatus.CANCELLED
    row = await inbox_row(stack.services.pool, cancel)
    assert row["status"] == "processed" and row["transition_id"] == visit.transition
    assert row["decision"] == "A13 delivered to the transition (kept until the discharge arrived)"

    # Discharged again: the A13 was applied to generation 1 and cancels nothing more.
    (again,) = await send(stack, visit.discharge(visit.now))
    assert again == "transition started (discharge-home)"
    state = await handle.query(TransitionWorkflow.get_state)
    assert state.generation == 2 and state.status == TransitionStatus.ACTIVE


async def test_an_a08_before_its_a03_gives_the_transition_its_newer_phone(
    stack: RunningStack, settings: Settings
) -> None:
    visit = Visit(settings)
    update = visit.event("A08", visit.now - timedelta(minutes=5), phone="4135550111")
    kept, started = await send(stack, update, visit.discharge(visit.now - timedelta(minutes=10)))
    assert kept == KEPT
    assert started.endswith("kept events: 1 delivered")
    await assert_numbers(stack, visit.transition, ["4135550111"])
    assert (await inbox_row(stack.services.pool, update))["status"] == "processed"


async def test_an_a08_older_than_the_a03_is_recorded_not_applied(
    stack: RunningStack, settings: Settings
) -> None:
    visit = Visit(settings)
    update = visit.event("A08", visit.now - timedelta(minutes=20), phone="4135550122")
    kept, started = await send(stack, update, visit.discharge(visit.now - timedelta(minutes=10)))
    assert kept == KEPT
    assert started == (
        "transition started (discharge-home); kept events: 1 older than the discharge"
    )
    row = await inbox_row(stack.services.pool, update)
    assert row["status"] == "ignored"
    assert row["decision"] == "older than the discharge: not applied"
    state = await handle_of(stack, visit.transition).query(TransitionWorkflow.get_state)
    assert state.contact_numbers == [] and state.status == TransitionStatus.ACTIVE


async def test_two_a08s_after_the_start_in_reverse_order_the_newer_phone_wins(
    stack: RunningStack, settings: Settings
) -> None:
    visit = Visit(settings)
    acks = await send(
        stack,
        visit.discharge(visit.now - timedelta(minutes=10)),
        visit.event("A08", visit.now - timedelta(minutes=1), phone="4135550133"),
        visit.event("A08", visit.now - timedelta(minutes=5), phone="4135550144"),
    )
    assert acks[1:] == ["A08 delivered to the transition"] * 2

    async def both_handled() -> None:  # the timeline has both, so the state is final
        details = await stack.services.pool.fetch(
            "SELECT detail FROM transition_events WHERE transition_id = $1 AND detail LIKE 'A08%'",
            visit.transition,
        )
        assert len(details) == 2

    await assert_eventually(both_handled)
    state = await handle_of(stack, visit.transition).query(TransitionWorkflow.get_state)
    assert state.contact_numbers == ["4135550133"]


async def test_a_kept_event_past_the_window_is_recorded_expired(
    stack: RunningStack, settings: Settings
) -> None:
    visit = Visit(settings)
    cancel = visit.event("A13", visit.now - timedelta(minutes=5))
    (kept,) = await send(stack, cancel)
    assert kept == KEPT
    row = await stack.services.pool.fetchrow(  # as if it had arrived 73 hours ago
        "UPDATE pending_visit_events SET received_at = received_at - interval '73 hours' "
        "WHERE inbox_id = (SELECT id FROM adt_inbox WHERE control_id = $1) RETURNING inbox_id",
        control_id_of(cancel),
    )
    assert row is not None
    (started,) = await send(stack, visit.discharge(visit.now - timedelta(minutes=10)))
    assert started == "transition started (discharge-home); kept events: 1 expired"
    decision = (await inbox_row(stack.services.pool, cancel))["decision"]
    assert decision == "kept 72 hours without its discharge: expired, not applied"
    state = await handle_of(stack, visit.transition).query(TransitionWorkflow.get_state)
    assert state.status == TransitionStatus.ACTIVE
