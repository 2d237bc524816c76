"""Later ADT events reach the running transition as signals and change it as the rules say."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.transition import AdtSignal, StepStatus, TransitionState, TransitionStatus
from tests.workflow.support import (
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


def adt(event_type: str, at: datetime, **fields: object) -> AdtSignal:
    return AdtSignal(
        event_type=event_type,
        message_control_id=uuid.uuid4().hex[:12],
        occurred_at=at,
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("event_type", ["A13", "A11"])
async def test_cancelled_discharge_ends_the_transition_and_stops_outreach(
    skipping_env: WorkflowEnvironment, worker: Worker, event_type: str
) -> None:
    handle, monday = await running(skipping_env, worker)
    await handle.signal(TransitionWorkflow.adt_event, adt(event_type, monday + timedelta(hours=3)))
    final = await handle.result()  # well before the 30 days
    assert final.status == TransitionStatus.CANCELLED
    assert final.outcome is not None and final.outcome.reason.startswith("discharge cancelled")
    assert final.outcome.tcm.eligible is False
    assert {s.status for s in final.steps} == {StepStatus.STOPPED}
    assert notices_for(final.transition_id) == []


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
