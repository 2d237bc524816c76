"""ADT events that reach a running transition out of order (issue 15, item 10), and merges
other than A40 (item 11): an A08 older than the last one applied is recorded, not applied;
A34/A47 re-key the transition like A40."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.transition import AdtSignal, TimelineEvent
from tests.helpers import assert_eventually
from tests.workflow.support import RECORDS, discharged_on
from workflows.transition import TransitionWorkflow


def timeline_of(transition_id: str) -> list[TimelineEvent]:
    return [e for r in RECORDS if r.transition_id == transition_id for e in r.events]


def a08(at: datetime, phone: str) -> AdtSignal:
    return AdtSignal(
        event_type="A08",
        message_control_id=uuid.uuid4().hex[:12],
        occurred_at=at,
        contact_numbers=(phone,),
    )


async def test_an_a08_older_than_the_last_applied_is_recorded_not_applied(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    discharged = (await handle.query(TransitionWorkflow.get_state)).discharged_at
    newer, older = discharged + timedelta(hours=3), discharged + timedelta(hours=1)
    await handle.signal(TransitionWorkflow.adt_event, a08(newer, "4135550111"))
    await handle.signal(TransitionWorkflow.adt_event, a08(older, "4135550122"))
    state = await handle.query(TransitionWorkflow.get_state)
    assert state.contact_numbers == ["4135550111"]

    async def recorded() -> None:
        ignored = [e.detail for e in timeline_of(state.transition_id) if e.kind == "adt_ignored"]
        assert any(d.startswith("A08") and "older than the last update" in d for d in ignored)

    await assert_eventually(recorded)
    latest = discharged + timedelta(hours=4)  # a later one still applies
    await handle.signal(TransitionWorkflow.adt_event, a08(latest, "4135550133"))
    assert (await handle.query(TransitionWorkflow.get_state)).contact_numbers == ["4135550133"]


@pytest.mark.parametrize("event_type", ["A34", "A47"])
async def test_merges_other_than_a40_re_key_the_transition(
    skipping_env: WorkflowEnvironment, worker: Worker, event_type: str
) -> None:
    handle = await discharged_on(skipping_env, worker)
    state = await handle.query(TransitionWorkflow.get_state)
    await handle.signal(
        TransitionWorkflow.adt_event,
        AdtSignal(
            event_type=event_type,
            message_control_id=uuid.uuid4().hex[:12],
            occurred_at=state.discharged_at + timedelta(hours=1),
            merged_into_patient_key="survivor".ljust(64, "0"),
        ),
    )

    async def merged() -> None:
        details = [e.detail for e in timeline_of(state.transition_id) if e.kind == "adt"]
        assert any(d.startswith(event_type) and d.endswith("patient merged") for d in details)

    await assert_eventually(merged)
