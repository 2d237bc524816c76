"""Operator actions are validated Updates: good ones change the transition and are recorded,
bad ones are rejected with a clear message and leave no trace in the history."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.transition import (
    AttemptRequest,
    AttemptResult,
    CancelStepRequest,
    CompleteStepRequest,
    NoteRequest,
    ReassignRequest,
    SnoozeRequest,
    StepStatus,
)
from tests.workflow.support import (
    RECORDS,
    advance_to,
    discharged_on,
    notices_for,
    steps_of,
)
from workflows.transition import TransitionWorkflow
from workflows.transition_updates import MAX_ATTEMPTS_PER_STEP


async def accepted_updates(handle: WorkflowHandle[Any, Any]) -> int:
    history = await handle.fetch_history()
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )


async def rejected(handle: WorkflowHandle[Any, Any], update: str, argument: Any) -> str:
    before = await accepted_updates(handle)
    with pytest.raises(WorkflowUpdateFailedError) as info:
        await handle.execute_update(update, argument)
    assert await accepted_updates(handle) == before, "a rejected update left a trace"
    return str(info.value.cause)


async def test_invalid_actions_are_rejected_with_a_reason_and_no_trace(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, protocol="discharge-home-health")
    await handle.execute_update(
        TransitionWorkflow.complete_step,
        CompleteStepRequest(step_id="interactive_contact", by="rn.alvarez"),
    )
    state = await handle.query(TransitionWorkflow.get_state)
    contact_limit = steps_of(state)["medication_reconciliation"].limit_at
    assert contact_limit is not None

    assert "unknown step 'home_visit'" in await rejected(
        handle, "complete_step", CompleteStepRequest(step_id="home_visit", by="rn.alvarez")
    )
    assert "'interactive_contact' is already completed" in await rejected(
        handle,
        "complete_step",
        CompleteStepRequest(step_id="interactive_contact", by="rn.alvarez"),
    )
    assert "waiting for home_health_referral" in await rejected(
        handle,
        "complete_step",
        CompleteStepRequest(step_id="home_health_start_of_care", by="rn.alvarez"),
    )
    assert "past its deadline" in await rejected(
        handle,
        "snooze",
        SnoozeRequest(
            step_id="medication_reconciliation",
            by="rn.alvarez",
            until=contact_limit + timedelta(hours=1),
            reason="patient travelling",
        ),
    )
    contact_due = steps_of(state)["follow_up_visit"].due_at
    assert contact_due is not None
    assert "past its deadline" in await rejected(
        handle,
        "snooze",
        SnoozeRequest(
            step_id="follow_up_visit",  # TCM: the visit's limit is its due day
            by="rn.alvarez",
            until=contact_due + timedelta(days=1),
            reason="no slot",
        ),
    )
    # Missing actor: our clients refuse it with the model's message (`by: must not be blank`);
    # a client that skips the models is refused by the workflow's own decoding, before history.
    assert "Failed decoding arguments" in await rejected(
        handle, "complete_step", {"step_id": "follow_up_visit", "by": "   "}
    )
    assert "Failed decoding arguments" in await rejected(handle, "add_note", {"text": "hello"})
    assert "already completed" in await rejected(
        handle, "reassign", ReassignRequest(step_id="interactive_contact", by="x", to="rn.patel")
    )


async def test_snooze_moves_the_due_time_and_its_ladder_within_the_limit(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    state = await handle.query(TransitionWorkflow.get_state)
    medrec = steps_of(state)["medication_reconciliation"]
    assert medrec.due_at is not None and medrec.limit_at is not None
    until = medrec.due_at + timedelta(days=3)
    snoozed = await handle.execute_update(
        TransitionWorkflow.snooze,
        SnoozeRequest(
            step_id="medication_reconciliation", by="rn.alvarez", until=until, reason="pharmacy"
        ),
    )
    assert snoozed.due_at == until and snoozed.limit_at == medrec.limit_at
    assert snoozed.escalations[0].at == until
    await advance_to(skipping_env, medrec.due_at + timedelta(days=1))
    assert notices_for(state.transition_id, "medication_reconciliation") == []
    await advance_to(skipping_env, until + timedelta(minutes=1))
    fired = notices_for(state.transition_id, "medication_reconciliation")
    assert [(n.level, n.due_at) for n in fired] == [(1, until)]


async def test_reassign_cancel_and_note_are_recorded_on_the_timeline(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    tid = (await handle.query(TransitionWorkflow.get_state)).transition_id
    moved = await handle.execute_update(
        TransitionWorkflow.reassign,
        ReassignRequest(step_id="follow_up_visit", by="supervisor.kim", to="rn.patel"),
    )
    assert moved.assignee == "rn.patel"
    cancelled = await handle.execute_update(
        TransitionWorkflow.cancel_step,
        CancelStepRequest(
            step_id="follow_up_visit", by="supervisor.kim", reason="PCP saw the patient at home"
        ),
    )
    assert cancelled.status == StepStatus.CANCELLED
    note = await handle.execute_update(
        TransitionWorkflow.add_note,
        NoteRequest(by="rn.patel", text="daughter manages the pill box", step_id="follow_up_visit"),
    )
    assert note.by == "rn.patel"
    state = await handle.query(TransitionWorkflow.get_state)
    assert [n.text for n in state.notes] == ["daughter manages the pill box"]
    kinds = [
        (e.kind, e.step_id, e.actor) for r in RECORDS if r.transition_id == tid for e in r.events
    ]
    assert ("reassigned", "follow_up_visit", "supervisor.kim") in kinds
    assert ("cancelled", "follow_up_visit", "supervisor.kim") in kinds
    assert ("note", "follow_up_visit", "rn.patel") in kinds
    seqs = [e.seq for r in RECORDS if r.transition_id == tid for e in r.events]
    assert seqs == list(range(1, len(seqs) + 1)), "timeline events sent once each, in order"


async def test_attempts_at_once_never_pass_the_cap(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    no_answer = AttemptRequest(
        step_id="interactive_contact", by="rn.a", result=AttemptResult.NO_ANSWER
    )
    for _ in range(MAX_ATTEMPTS_PER_STEP - 1):
        await handle.execute_update(TransitionWorkflow.record_attempt, no_answer)
    outcomes = await asyncio.gather(
        *(handle.execute_update(TransitionWorkflow.record_attempt, no_answer) for _ in range(6)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
    assert len(refused) == 5
    assert all("already has 20 attempts" in str(r.cause) for r in refused)
    contact = steps_of(await handle.query(TransitionWorkflow.get_state))["interactive_contact"]
    assert len(contact.attempts) == MAX_ATTEMPTS_PER_STEP
