"""Each default protocol end to end to its 30-day outcome, and the TCM code rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.protocol import StepKind, TcmElement
from schemas.transition import (
    AttemptRequest,
    AttemptResult,
    CompleteStepRequest,
    Complexity,
    ScreeningRequest,
    StepStatus,
    TransitionState,
    TransitionStatus,
)
from tests.workflow.support import (
    HIGH_RISK,
    LIBRARY,
    NO_NEEDS,
    discharged_on,
    steps_of,
)
from workflows.transition import TransitionWorkflow


async def complete(
    handle: WorkflowHandle[TransitionWorkflow, TransitionState],
    step_id: str,
    complexity: Complexity | None = None,
) -> None:
    await handle.execute_update(
        TransitionWorkflow.complete_step,
        CompleteStepRequest(step_id=step_id, by="rn.alvarez", complexity=complexity),
    )


@pytest.mark.parametrize("protocol", ["discharge-home", "discharge-home-health", "left-ama"])
async def test_tcm_protocol_with_every_step_done_ends_99495_at_day_30(
    skipping_env: WorkflowEnvironment, worker: Worker, protocol: str
) -> None:
    handle = await discharged_on(skipping_env, worker, protocol=protocol)
    await skipping_env.sleep(timedelta(days=1))  # HEDIS engagement counts from day 1
    for rule in LIBRARY.latest(protocol).steps:
        if rule.kind == StepKind.SCREENING:
            await handle.execute_update(
                TransitionWorkflow.record_screening,
                ScreeningRequest(step_id=rule.id, by="rn.alvarez", answers=NO_NEEDS),
            )
        elif not rule.tiers and rule.kind != StepKind.REFERRAL:  # standard risk: no check-in
            visit = rule.tcm_element == TcmElement.FACE_TO_FACE_VISIT
            await complete(handle, rule.id, Complexity.MODERATE if visit else None)
    final = await handle.result()

    assert final.status == TransitionStatus.COMPLETED
    assert final.outcome is not None
    assert final.outcome.reason == "transition period ended"
    assert final.outcome.tcm.eligible and final.outcome.tcm.code == "99495"
    trc = final.outcome.trc
    assert trc.patient_engagement and trc.medication_reconciliation
    assert not trc.discharge_information  # no discharge-summary step in these protocols
    # a negative screening leaves every referral step not needed
    assert all(s.status in (StepStatus.COMPLETED, StepStatus.NOT_NEEDED) for s in final.steps)
    assert final.period_ends_at is not None
    closed = final.outcome.closed_at
    assert final.period_ends_at <= closed < final.period_ends_at + timedelta(minutes=1)


async def test_home_health_start_of_care_waits_for_the_referral(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, protocol="discharge-home-health")
    steps = steps_of(await handle.query(TransitionWorkflow.get_state))
    assert steps["home_health_start_of_care"].status == StepStatus.PENDING
    await complete(handle, "home_health_referral")
    steps = steps_of(await handle.query(TransitionWorkflow.get_state))
    assert steps["home_health_start_of_care"].status == StepStatus.OPEN


async def test_facility_handoff_is_not_tcm_and_counts_discharge_information(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, protocol="facility-handoff")
    await complete(handle, "discharge_summary_handoff")
    final = await handle.result()
    assert final.outcome is not None
    assert not final.outcome.tcm.applicable
    assert final.outcome.trc.discharge_information


async def test_expired_protocol_closes_at_once_as_deceased(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, protocol="expired")
    final = await handle.result()
    assert final.status == TransitionStatus.DECEASED
    assert final.steps == []
    assert final.outcome is not None and not final.outcome.tcm.applicable


async def test_two_unanswered_attempts_still_count_toward_tcm(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    await skipping_env.sleep(timedelta(days=1))
    for result in (AttemptResult.NO_ANSWER, AttemptResult.LEFT_MESSAGE):
        await handle.execute_update(
            TransitionWorkflow.record_attempt,
            AttemptRequest(step_id="interactive_contact", by="rn.alvarez", result=result),
        )
    await skipping_env.sleep(timedelta(days=4))
    await complete(handle, "medication_reconciliation")
    await complete(handle, "follow_up_visit", Complexity.MODERATE)
    final = await handle.result()
    contact = steps_of(final)["interactive_contact"]
    assert contact.status == StepStatus.STOPPED  # never reached; stopped at period end
    assert [a.result for a in contact.attempts] == [
        AttemptResult.NO_ANSWER,
        AttemptResult.LEFT_MESSAGE,
    ]
    assert final.outcome is not None
    assert final.outcome.tcm.code == "99495"
    assert "2 documented contact attempts within the deadline" in final.outcome.tcm.reasons


async def test_one_unanswered_attempt_is_not_enough(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    await handle.execute_update(
        TransitionWorkflow.record_attempt,
        AttemptRequest(
            step_id="interactive_contact", by="rn.alvarez", result=AttemptResult.NO_ANSWER
        ),
    )
    await complete(handle, "medication_reconciliation")
    await skipping_env.sleep(timedelta(days=3))
    await complete(handle, "follow_up_visit")
    final = await handle.result()
    assert final.outcome is not None and not final.outcome.tcm.eligible
    assert any("interactive contact" in r for r in final.outcome.tcm.reasons)


async def reached_then_visit_on_day(
    env: WorkflowEnvironment, worker: Worker, day: int
) -> TransitionState:
    handle = await discharged_on(env, worker, risk=HIGH_RISK)
    await env.sleep(timedelta(days=1))
    await handle.execute_update(
        TransitionWorkflow.record_attempt,
        AttemptRequest(
            step_id="interactive_contact", by="rn.alvarez", result=AttemptResult.REACHED
        ),
    )
    await complete(handle, "medication_reconciliation")
    await env.sleep(timedelta(days=day - 1))
    await complete(handle, "follow_up_visit", Complexity.HIGH)
    return await handle.result()


async def test_visit_on_day_8_for_a_high_complexity_patient_is_99495_not_99496(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    final = await reached_then_visit_on_day(skipping_env, worker, 8)
    assert final.outcome is not None
    assert final.outcome.tcm.code == "99495"
    assert "high complexity but visit on day 8 (> 7)" in final.outcome.tcm.reasons


async def test_a_visit_without_its_complexity_meets_tcm_but_gets_no_code_not_even_at_high_risk(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, risk=HIGH_RISK)
    await skipping_env.sleep(timedelta(days=1))
    await handle.execute_update(
        TransitionWorkflow.record_attempt,
        AttemptRequest(
            step_id="interactive_contact", by="rn.alvarez", result=AttemptResult.REACHED
        ),
    )
    await complete(handle, "medication_reconciliation")
    await skipping_env.sleep(timedelta(days=4))
    await complete(handle, "follow_up_visit")  # no MDM complexity recorded
    final = await handle.result()
    assert final.outcome is not None and final.outcome.tcm.eligible
    assert final.outcome.tcm.code is None  # never inferred from the LACE tier
    assert "visit on day 5: complexity not documented (99495 or 99496)" in (
        final.outcome.tcm.reasons
    )


async def test_visit_on_day_6_for_a_high_complexity_patient_is_99496(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    final = await reached_then_visit_on_day(skipping_env, worker, 6)
    assert final.outcome is not None
    assert final.outcome.tcm.code == "99496"


async def test_medication_reconciliation_after_the_visit_is_not_eligible(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker)
    await skipping_env.sleep(timedelta(days=1))
    await complete(handle, "interactive_contact")
    await complete(handle, "follow_up_visit")
    await skipping_env.sleep(timedelta(days=2))
    await complete(handle, "medication_reconciliation")
    final = await handle.result()
    assert final.outcome is not None and not final.outcome.tcm.eligible
    assert "medication reconciliation after the face-to-face visit" in final.outcome.tcm.reasons
