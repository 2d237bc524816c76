"""The feed's signals on the workflow (workflows/transition_feed.py), on a clock the test
owns: a booking, a move past the limit (flagged), a change of another appointment (not
applied), a no-show (cleared), an arrival at the clinic (the visit completed on its time, the
TCM code from it), a no-show after that (not applied); a discharge summary closes the
facility handoff's discharge-information step on its time."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.feed import Appointment
from schemas.transition import (
    AdtSignal,
    CompleteStepRequest,
    Complexity,
    CorrectionRequest,
    StepStatus,
    TransitionState,
    UndoFeedRequest,
)
from tests.workflow.support import HIGH_RISK, RECORDS, advance_to, discharged_on, steps_of
from workflows.transition import TransitionWorkflow

Handle = WorkflowHandle[TransitionWorkflow, TransitionState]


def siu(kind: str, n: int, at: datetime, appointment_id: str = "A1") -> AdtSignal:
    return AdtSignal(
        event_type=kind,
        message_control_id=f"SIU-{kind}-{n}",
        occurred_at=at,
        appointment=Appointment(id=appointment_id, at=at, provider="GREGORY HOUSE", location="PCP"),
        inbox_id=100 + n,
        feed=True,
        message_type="SIU",
    )


async def state(handle: Handle) -> TransitionState:
    return await handle.query(TransitionWorkflow.get_state)


async def details(handle: Handle) -> list[str]:
    """The timeline lines the transition has published (the projection activity's records)."""
    tid = (await state(handle)).transition_id
    return [e.detail for r in RECORDS if r.transition_id == tid for e in r.events]


async def test_bookings_moves_and_a_no_show_then_the_clinic_arrival_completes_the_visit(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, risk=HIGH_RISK)
    discharged = (await state(handle)).discharged_at
    await handle.signal(TransitionWorkflow.adt_event, siu("S12", 1, discharged + timedelta(days=3)))
    visit = steps_of(await state(handle))["follow_up_visit"]
    assert visit.appointment_at == discharged + timedelta(days=3)
    assert (visit.appointment_with, visit.appointment_where) == ("GREGORY HOUSE", "PCP")
    assert not visit.appointment_late and visit.status == StepStatus.OPEN
    assert visit.limit_at is not None
    past_limit = visit.limit_at + timedelta(days=1)
    await handle.signal(TransitionWorkflow.adt_event, siu("S13", 2, past_limit))
    visit = steps_of(await state(handle))["follow_up_visit"]
    assert visit.appointment_at == past_limit and visit.appointment_late
    await handle.signal(
        TransitionWorkflow.adt_event, siu("S14", 3, discharged + timedelta(days=4), "OTHER")
    )
    assert steps_of(await state(handle))["follow_up_visit"].appointment_at == past_limit
    await handle.signal(TransitionWorkflow.adt_event, siu("S26", 4, past_limit))
    visit = steps_of(await state(handle))["follow_up_visit"]
    assert visit.appointment_at is None and not visit.appointment_late
    assert visit.status == StepStatus.OPEN
    shown = await details(handle)
    assert any("inbox 102" in d and "act now" in d for d in shown)
    assert any("another appointment" in d for d in shown)
    assert any("no-show" in d for d in shown)

    for step in ("interactive_contact", "medication_reconciliation"):
        await handle.execute_update(
            TransitionWorkflow.complete_step, CompleteStepRequest(step_id=step, by="rn.a")
        )
    arrived = discharged + timedelta(days=6)
    await handle.signal(
        TransitionWorkflow.adt_event,
        AdtSignal(
            event_type="A04",
            message_control_id="A04-1",
            occurred_at=arrived,
            patient_class="O",
            clinic="PCP",
            inbox_id=200,
            feed=True,
        ),
    )
    visit = steps_of(await state(handle))["follow_up_visit"]
    assert visit.status == StepStatus.COMPLETED and visit.completed_at == arrived
    assert visit.completed_by == "feed"
    await handle.signal(TransitionWorkflow.adt_event, siu("S26", 5, arrived))
    assert any("already completed" in d for d in await details(handle))
    undo = UndoFeedRequest(step_id="follow_up_visit", by="sup.kim", reason="wrong patient")
    reopened = await handle.execute_update(TransitionWorkflow.undo_feed, undo)
    assert reopened.status == StepStatus.OPEN and reopened.completed_at is None
    await handle.signal(
        TransitionWorkflow.adt_event,
        AdtSignal(
            event_type="A04",
            message_control_id="A04-2",
            occurred_at=arrived,
            patient_class="O",
            clinic="PCP",
            feed=True,
        ),
    )
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            TransitionWorkflow.undo_feed, undo.model_copy(update={"step_id": "interactive_contact"})
        )
    # the feed says when the visit was, not the provider's decision making: a supervisor
    # records it, and only then is there a code
    await handle.execute_update(
        TransitionWorkflow.correct_step,
        CorrectionRequest(
            step_id="follow_up_visit", by="sup.kim", complexity=Complexity.HIGH, reason="MDM"
        ),
    )
    final = await handle.result()
    assert final.outcome is not None and final.outcome.tcm.code == "99496"
    assert final.readmitted_at is None  # an A04 at the clinic is no readmission


async def test_a_discharge_summary_closes_the_handoffs_discharge_information_step(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, protocol="facility-handoff")
    written = (await state(handle)).discharged_at + timedelta(hours=5)
    await handle.signal(
        TransitionWorkflow.adt_event,
        AdtSignal(
            event_type="T02",
            message_control_id="MDM-1",
            occurred_at=written,
            inbox_id=7,
            feed=True,
            message_type="MDM",
            document_type="DS",
        ),
    )
    [step] = [s for s in (await state(handle)).steps if s.tcm_element is not None]
    assert step.status == StepStatus.COMPLETED and step.completed_at == written
    assert any("inbox 7" in d and "discharge summary" in d for d in await details(handle))


async def test_a_site_that_confirms_visits_gets_visit_reported_not_completed(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    arrived = (await state(handle)).discharged_at + timedelta(days=5)
    await handle.signal(
        TransitionWorkflow.adt_event,
        AdtSignal(
            event_type="A04",
            message_control_id="A04-C",
            occurred_at=arrived,
            patient_class="O",
            clinic="PCP",
            inbox_id=300,
            feed=True,
            confirm=True,
        ),
    )
    visit = steps_of(await state(handle))["follow_up_visit"]
    assert visit.status == StepStatus.OPEN and visit.reported_at == arrived
    assert any("visit reported, confirm" in d for d in await details(handle))
    await advance_to(skipping_env, arrived + timedelta(hours=1))
    confirmed = await handle.execute_update(
        TransitionWorkflow.complete_step,
        CompleteStepRequest(step_id="follow_up_visit", by="rn.a", occurred_on=arrived.date()),
    )
    assert confirmed.status == StepStatus.COMPLETED and confirmed.completed_by == "rn.a"
