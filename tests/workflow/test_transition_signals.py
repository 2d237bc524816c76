"""Later ADT events reach the running transition as signals and change it as the rules say."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.transition import (
    AdtSignal,
    StepStatus,
    TimelineEvent,
    TransitionState,
    TransitionStatus,
)
from tests.workflow.support import (
    RECORDS,
    advance_to,
    discharged_on,
    notices_for,
)
from workflows.transition import TransitionWorkflow


async def running(
    env: WorkflowEnvironment, worker: Worker
) -> tuple[WorkflowHandle[TransitionWorkflow, TransitionState], datetime]:
    handle = await discharged_on(env, worker)
    return handle, (await handle.query(TransitionWorkflow.get_state)).discharged_at


def timeline_of(transition_id: str) -> list[TimelineEvent]:
    """Every timeline event the transition published (the projection records it wrote)."""
    return [e for r in RECORDS if r.transition_id == transition_id for e in r.events]


def adt(event_type: str, at: datetime, **fields: object) -> AdtSignal:
    return AdtSignal(
        event_type=event_type,
        message_control_id=uuid.uuid4().hex[:12],
        occurred_at=at,
        **fields,  # type: ignore[arg-type]
    )


async def test_cancelled_discharge_ends_the_transition_and_stops_outreach(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle, monday = await running(skipping_env, worker)
    await handle.signal(TransitionWorkflow.adt_event, adt("A13", monday + timedelta(hours=3)))
    final = await handle.result()  # well before the 30 days
    assert final.status == TransitionStatus.CANCELLED
    assert final.outcome is not None and final.outcome.reason.startswith("discharge cancelled")
    assert final.outcome.tcm.eligible is False
    assert {s.status for s in final.steps} == {StepStatus.STOPPED}
    assert notices_for(final.transition_id) == []


async def test_an_a11_of_the_discharged_visit_is_recorded_and_cancels_nothing(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    """HL7 chapter 3 orders A13 before A11: an A11 after the discharge is out of order."""
    handle, monday = await running(skipping_env, worker)
    tid = (await handle.query(TransitionWorkflow.get_state)).transition_id
    own = tid.ljust(64, "0")  # the encounter key start_transition gives it
    await handle.signal(
        TransitionWorkflow.adt_event, adt("A11", monday + timedelta(hours=3), encounter_key=own)
    )
    state = await handle.query(TransitionWorkflow.get_state)
    assert state.status == TransitionStatus.ACTIVE
    assert StepStatus.STOPPED not in {s.status for s in state.steps}
    assert any(
        e.kind == "adt_ignored" and "A11" in e.detail and "A13 cancels it" in e.detail
        for e in timeline_of(tid)
    )


async def test_a12_puts_the_patient_back_where_the_a02_moved_them_from(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle, monday = await running(skipping_env, worker)
    at = monday + timedelta(hours=3)
    await handle.signal(TransitionWorkflow.adt_event, adt("A02", at, location="5E^502^B"))
    await handle.signal(TransitionWorkflow.adt_event, adt("A12", at, location="4W^401^A"))
    state = await handle.query(TransitionWorkflow.get_state)
    details = [e.detail for e in timeline_of(state.transition_id) if e.kind == "adt"]
    assert any(d.startswith("A02") and "location 5E" in d for d in details)
    assert any(d.startswith("A12") and "location 4W" in d for d in details)


@pytest.mark.parametrize("event_type", ["A01", "A06"])
async def test_readmission_is_recorded_and_stops_outreach(
    skipping_env: WorkflowEnvironment, worker: Worker, event_type: str
) -> None:
    handle, monday = await running(skipping_env, worker)
    admitted = monday + timedelta(days=4)
    await advance_to(skipping_env, admitted - timedelta(hours=1))
    await handle.signal(TransitionWorkflow.adt_event, adt(event_type, admitted))
    state = await handle.query(TransitionWorkflow.get_state)
    assert state.status == TransitionStatus.ACTIVE  # the period still runs, for the outcome
    assert state.readmitted_at == admitted
    assert {s.status for s in state.steps} == {StepStatus.STOPPED}
    escalations_before = len(notices_for(state.transition_id))
    final = await handle.result()
    assert final.outcome is not None and final.outcome.readmitted_at == admitted
    assert len(notices_for(state.transition_id)) == escalations_before  # nothing after


async def test_death_reported_later_closes_as_deceased(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle, monday = await running(skipping_env, worker)
    await handle.signal(
        TransitionWorkflow.adt_event, adt("A08", monday + timedelta(days=2), deceased=True)
    )
    final = await handle.result()
    assert final.status == TransitionStatus.DECEASED
    assert final.outcome is not None
    assert "the patient died before the end of the period" in final.outcome.tcm.reasons


async def test_update_changes_contact_numbers_and_merge_rekeys(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle, monday = await running(skipping_env, worker)
    await handle.signal(
        TransitionWorkflow.adt_event,
        adt("A08", monday + timedelta(hours=1), contact_numbers=("4135550199",)),
    )
    await handle.signal(
        TransitionWorkflow.adt_event,
        adt("A40", monday + timedelta(hours=2), merged_into_patient_key="k" * 64),
    )
    state = await handle.query(TransitionWorkflow.get_state)
    assert state.contact_numbers == ["4135550199"]
    assert state.status == TransitionStatus.ACTIVE
    assert not any(s.is_terminal for s in state.steps)  # neither event closed a step


async def test_a_redelivered_signal_is_applied_once(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle, monday = await running(skipping_env, worker)
    first = adt("A08", monday + timedelta(hours=1), contact_numbers=("1",))
    await handle.signal(TransitionWorkflow.adt_event, first)
    await handle.signal(
        TransitionWorkflow.adt_event,
        adt("A08", monday + timedelta(hours=2), contact_numbers=("2",)),
    )
    await handle.signal(TransitionWorkflow.adt_event, first)  # retransmitted: ignored
    state = await handle.query(TransitionWorkflow.get_state)
    assert state.contact_numbers == ["2"]


async def test_events_after_the_transition_closed_change_nothing(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle, monday = await running(skipping_env, worker)
    await handle.signal(TransitionWorkflow.adt_event, adt("A01", monday + timedelta(days=1)))
    await handle.signal(TransitionWorkflow.adt_event, adt("A13", monday + timedelta(days=2)))
    state = await handle.query(TransitionWorkflow.get_state)
    assert state.status == TransitionStatus.CANCELLED
    assert state.readmitted_at == monday + timedelta(days=1)


async def test_a_readmission_redelivered_after_many_later_messages_is_still_ignored(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle, monday = await running(skipping_env, worker)
    readmission = adt("A01", monday + timedelta(hours=2), encounter_key="readmit".ljust(64, "0"))
    await handle.signal(TransitionWorkflow.adt_event, readmission)
    await handle.signal(
        TransitionWorkflow.adt_event,
        adt("A11", monday + timedelta(hours=3), encounter_key="readmit".ljust(64, "0")),
    )
    for hour in range(60):  # more than the window of recent message ids
        at = monday + timedelta(hours=4, minutes=hour)
        await handle.signal(TransitionWorkflow.adt_event, adt("A08", at))
    await handle.signal(TransitionWorkflow.adt_event, readmission)  # the sender replays it
    state = await handle.query(TransitionWorkflow.get_state)
    assert state.readmitted_at is None  # the withdrawal stands
    assert not any(s.status == StepStatus.STOPPED for s in state.steps)
