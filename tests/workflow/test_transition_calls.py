"""The outreach call's outcome is one Update mapped onto the steps it informs; a visit is
completed with its day and complexity, and a supervisor corrects it. Times are built from the
test server's clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.call import AppointmentStatus, Reached, RedFlag
from schemas.transition import (
    AttemptResult,
    CallOutcomeRequest,
    CompleteStepRequest,
    Complexity,
    CorrectionRequest,
    StepStatus,
)
from tests.workflow.support import NY, RECORDS, discharged_on, notices_for, steps_of
from tests.workflow.test_transition_updates import rejected
from workflows.transition import TransitionWorkflow


def timeline(transition_id: str) -> list[tuple[str, str | None, str]]:
    return [
        (e.kind, e.step_id, e.detail)
        for r in RECORDS
        if r.transition_id == transition_id
        for e in r.events
    ]


async def test_reaching_the_patient_completes_the_contact_and_informs_the_other_steps(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, protocol="discharge-home")
    await skipping_env.sleep(timedelta(hours=5))
    now = await skipping_env.get_current_time()
    called_at = now - timedelta(hours=1)  # recorded an hour after the call
    appointment = now + timedelta(days=5)
    record = await handle.execute_update(
        TransitionWorkflow.record_call,
        CallOutcomeRequest(
            by="rn.alvarez",
            at=called_at,
            reached=Reached.CAREGIVER,
            medication_problems=True,
            medication_notes="stopped the diuretic at home",
            appointment_at=appointment,
            social_needs=True,
            note="daughter answered",
        ),
    )
    assert record.at == called_at and record.step_id == "interactive_contact"
    state = await handle.query(TransitionWorkflow.get_state)
    steps = steps_of(state)
    contact = steps["interactive_contact"]
    assert contact.status == StepStatus.COMPLETED and contact.completed_at == called_at
    assert contact.outcome == "reached caregiver"
    assert [a.result for a in contact.attempts] == [AttemptResult.REACHED]
    visit = steps["follow_up_visit"]
    assert visit.status == StepStatus.OPEN  # booked, not done
    assert (visit.appointment_at, visit.appointment_status) == (
        appointment,
        AppointmentStatus.BOOKED,
    )
    medrec = steps["medication_reconciliation"]
    assert medrec.status == StepStatus.OPEN  # evidence for the pharmacist, not a reconciliation
    assert [(e.finding, e.note) for e in medrec.evidence] == [
        ("medication problems found", "stopped the diuretic at home")
    ]
    assert [e.finding for e in steps["social_needs_screening"].evidence] == ["social needs found"]
    assert [c.note for c in state.calls] == ["daughter answered"]
    events = timeline(state.transition_id)
    summary = "reached caregiver; medication problems found; appointment booked; social needs found"
    assert ("call", "interactive_contact", summary) in events
    assert ("evidence", "medication_reconciliation", "call: medication problems found") in events
    assert any(kind == "appointment" and step == "follow_up_visit" for kind, step, _ in events)
    assert all("diuretic" not in detail for _, _, detail in events)  # free text stays out


async def test_a_call_that_reached_nobody_is_an_attempt_and_leaves_the_step_open(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    for kind in ({"left_message": True}, {"wrong_number": True}, {}):
        await handle.execute_update(
            TransitionWorkflow.record_call,
            CallOutcomeRequest(by="rn.a", reached=Reached.NOBODY, **kind),
        )
    contact = steps_of(await handle.query(TransitionWorkflow.get_state))["interactive_contact"]
    assert contact.status == StepStatus.OPEN
    assert [a.result for a in contact.attempts] == [
        AttemptResult.LEFT_MESSAGE,
        AttemptResult.WRONG_NUMBER,
        AttemptResult.NO_ANSWER,
    ]


async def test_red_flags_notify_a_clinician_at_once(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    tid = (await handle.query(TransitionWorkflow.get_state)).transition_id
    record = await handle.execute_update(
        TransitionWorkflow.record_call,
        CallOutcomeRequest(
            by="rn.a",
            reached=Reached.PATIENT,
            red_flags=(RedFlag.SHORTNESS_OF_BREATH, RedFlag.WEIGHT_GAIN_OR_SWELLING),
        ),
    )
    for _ in range(100):  # the notice goes out in its own task, right after the answer
        if notices_for(tid):
            break
        await asyncio.sleep(0.05)
    [notice] = notices_for(tid)
    assert notice.red_flag and notice.level == 0
    assert (notice.role, notice.channel, notice.due_at) == ("clinician", "page", record.at)
    assert "shortness" not in notice.model_dump_json()  # no symptom leaves carebridge
    assert (
        "red_flag",
        "interactive_contact",
        "2 red-flag symptom(s): clinician notified now via page",
    ) in timeline(tid)


async def test_calls_that_cannot_apply_are_refused_with_a_reason(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    state = await handle.query(TransitionWorkflow.get_state)
    now = await skipping_env.get_current_time()
    assert "'medication_reconciliation' is not a call; calls are recorded on" in await rejected(
        handle,
        "record_call",
        CallOutcomeRequest(by="rn.a", step_id="medication_reconciliation", reached=Reached.PATIENT),
    )
    assert "the call cannot be in the future" in await rejected(
        handle,
        "record_call",
        CallOutcomeRequest(by="rn.a", at=now + timedelta(hours=2), reached=Reached.PATIENT),
    )
    assert "the call cannot be before the discharge" in await rejected(
        handle,
        "record_call",
        CallOutcomeRequest(
            by="rn.a", at=state.discharged_at - timedelta(hours=1), reached=Reached.PATIENT
        ),
    )
    await handle.execute_update(
        TransitionWorkflow.complete_step,
        CompleteStepRequest(step_id="follow_up_visit", by="dr.o", complexity=Complexity.HIGH),
    )
    assert "the follow-up visit is already completed: leave the appointment out" in await rejected(
        handle,
        "record_call",
        CallOutcomeRequest(
            by="rn.a", reached=Reached.PATIENT, appointment_at=now + timedelta(days=2)
        ),
    )


async def test_a_visit_is_completed_on_its_day_and_a_supervisor_corrects_it(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)  # a Monday
    state = await handle.query(TransitionWorkflow.get_state)
    discharge_day = state.discharged_at.astimezone(NY).date()
    await skipping_env.sleep(timedelta(days=2))  # Wednesday
    today = (await skipping_env.get_current_time()).astimezone(NY).date()
    assert "cannot be in the future" in await rejected(
        handle,
        "complete_step",
        CompleteStepRequest(
            step_id="follow_up_visit", by="dr.o", occurred_on=today + timedelta(days=1)
        ),
    )
    assert f"cannot be before the discharge on {discharge_day.isoformat()}" in await rejected(
        handle,
        "complete_step",
        CompleteStepRequest(
            step_id="follow_up_visit", by="dr.o", occurred_on=discharge_day - timedelta(days=1)
        ),
    )
    assert "only a completed step can be corrected" in await rejected(
        handle,
        "correct_step",
        CorrectionRequest(
            step_id="follow_up_visit", by="sup.k", reason="x", complexity=Complexity.HIGH
        ),
    )
    tuesday = discharge_day + timedelta(days=1)
    visit = await handle.execute_update(
        TransitionWorkflow.complete_step,
        CompleteStepRequest(
            step_id="follow_up_visit",
            by="dr.o",
            occurred_on=tuesday,
            complexity=Complexity.MODERATE,
        ),
    )
    assert visit.completed_at is not None
    assert visit.completed_at.astimezone(NY).date() == tuesday
    assert "nothing to correct" in await rejected(
        handle,
        "correct_step",
        CorrectionRequest(
            step_id="follow_up_visit", by="sup.k", occurred_on=tuesday, reason="same again"
        ),
    )
    await handle.execute_update(
        TransitionWorkflow.complete_step,
        CompleteStepRequest(step_id="interactive_contact", by="rn.a"),
    )
    assert "the complexity is the face-to-face visit's" in await rejected(
        handle,
        "correct_step",
        CorrectionRequest(
            step_id="interactive_contact", by="sup.k", complexity=Complexity.HIGH, reason="x"
        ),
    )
    corrected = await handle.execute_update(
        TransitionWorkflow.correct_step,
        CorrectionRequest(
            step_id="follow_up_visit",
            by="sup.k",
            occurred_on=today,
            complexity=Complexity.HIGH,
            reason="the note was signed on the visit day",
        ),
    )
    assert corrected.complexity == Complexity.HIGH
    assert corrected.completed_at is not None
    assert corrected.completed_at.astimezone(NY).date() == today
    change = f"date {tuesday.isoformat()} -> {today.isoformat()}; complexity moderate -> high"
    assert [(c.by, c.changes) for c in corrected.corrections] == [("sup.k", change)]
    assert ("corrected", "follow_up_visit", change) in timeline(state.transition_id)
