"""The person behind the discharge in the workflow: the HRSN screening opens one referral step
per positive domain (the others are not needed), open referrals climb their ladder, a
referral closes only with a resource of its own domain, and the profile is edited by Update."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from schemas.person import Caregiver, ContactWindow, PersonProfile
from schemas.social_needs import (
    FoodFrequency,
    HrsnDomain,
    LivingSituation,
    ReferralOutcome,
    Resource,
    SafetyFrequency,
)
from schemas.transition import (
    CompleteStepRequest,
    ProfileRequest,
    ReferralRequest,
    ScreeningRequest,
    StepStatus,
)
from tests.workflow.support import (
    FOOD_AND_TRANSPORT,
    NO_NEEDS,
    RECORDS,
    discharged_on,
    notices_for,
    steps_of,
)
from tests.workflow.test_transition_updates import rejected
from workflows.transition import TransitionWorkflow

FOOD_BANK = Resource(id="food-bank", name="Food bank", domain=HrsnDomain.FOOD)
REFERRALS = ("housing", "food", "transportation", "utilities", "safety")


def screening(answers: object = FOOD_AND_TRANSPORT) -> ScreeningRequest:
    return ScreeningRequest.model_validate(
        {"step_id": "social_needs_screening", "by": "rn.alvarez", "answers": answers}
    )


def test_each_domain_screens_positive_by_the_ahc_rules() -> None:
    assert NO_NEEDS.positive_domains() == ()
    assert FOOD_AND_TRANSPORT.positive_domains() == (HrsnDomain.FOOD, HrsnDomain.TRANSPORTATION)
    worried = NO_NEEDS.model_copy(update={"living_situation": LivingSituation.WORRIED})
    assert worried.positive_domains() == (HrsnDomain.HOUSING,)
    scared = NO_NEEDS.model_copy(
        update={  # 3 + 3 + 3 + 2 = 11: the threshold
            "safety_physically_hurt": SafetyFrequency.SOMETIMES,
            "safety_insult_or_talk_down": SafetyFrequency.SOMETIMES,
            "safety_threaten_with_harm": SafetyFrequency.SOMETIMES,
            "safety_scream_or_curse": SafetyFrequency.RARELY,
        }
    )
    assert scared.safety_score == 11 and scared.positive_domains() == (HrsnDomain.SAFETY,)
    below = scared.model_copy(update={"safety_scream_or_curse": SafetyFrequency.NEVER})
    assert below.positive_domains() == ()
    often = NO_NEEDS.model_copy(update={"food_worried_would_run_out": FoodFrequency.OFTEN})
    assert often.positive_domains() == (HrsnDomain.FOOD,)


def test_an_answer_outside_the_tools_options_is_refused() -> None:
    with pytest.raises(ValueError, match="food_did_not_last"):
        screening(NO_NEEDS.model_dump() | {"food_did_not_last": "rarely"})
    with pytest.raises(ValueError, match="extra"):
        screening(NO_NEEDS.model_dump() | {"income": "low"})


async def test_two_positive_domains_open_two_referrals_that_escalate_and_close_with_a_resource(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, weekday=0)  # a Monday
    steps = steps_of(await handle.query(TransitionWorkflow.get_state))
    assert all(steps[f"referral_{r}"].status == StepStatus.PENDING for r in REFERRALS)

    refusal = await rejected(
        handle,
        "complete_step",
        CompleteStepRequest(step_id="social_needs_screening", by="rn.alvarez"),
    )
    assert "completed by recording the screening" in refusal
    result = await handle.execute_update(TransitionWorkflow.record_screening, screening())
    assert result.positive == (HrsnDomain.FOOD, HrsnDomain.TRANSPORTATION)

    state = await handle.query(TransitionWorkflow.get_state)
    steps = steps_of(state)
    assert steps["social_needs_screening"].status == StepStatus.COMPLETED
    assert steps["referral_food"].status == StepStatus.OPEN
    assert steps["referral_transportation"].status == StepStatus.OPEN
    assert steps["referral_food"].due_at is not None
    for negative in ("housing", "utilities", "safety"):
        assert steps[f"referral_{negative}"].status == StepStatus.NOT_NEEDED

    # Left open past its due time (2 business days), each referral escalates.
    await skipping_env.sleep(timedelta(days=4))
    tid = state.transition_id
    for referral in ("referral_food", "referral_transportation"):
        levels = [n.level for n in notices_for(tid, referral)]
        assert levels and levels == sorted(levels) and levels[0] == 1  # up the ladder
    assert notices_for(tid, "referral_housing") == []

    wrong = ReferralRequest(
        step_id="referral_transportation",
        by="rn.alvarez",
        resource=FOOD_BANK,
        outcome=ReferralOutcome.CONNECTED,
    )
    assert "serves food_insecurity, not transportation" in await rejected(
        handle, "close_referral", wrong
    )
    closed = await handle.execute_update(
        TransitionWorkflow.close_referral,
        wrong.model_copy(update={"step_id": "referral_food"}),
    )
    assert closed.domain == HrsnDomain.FOOD and closed.resource == FOOD_BANK
    state = await handle.query(TransitionWorkflow.get_state)
    steps = steps_of(state)
    assert steps["referral_food"].status == StepStatus.COMPLETED
    assert steps["referral_food"].outcome == "connected"
    assert steps["referral_transportation"].status == StepStatus.OPEN
    assert [r.step_id for r in state.referrals] == ["referral_food"]


async def test_a_negative_screening_needs_no_referral(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, weekday=1)
    await handle.execute_update(TransitionWorkflow.record_screening, screening(NO_NEEDS))
    steps = steps_of(await handle.query(TransitionWorkflow.get_state))
    assert all(steps[f"referral_{r}"].status == StepStatus.NOT_NEEDED for r in REFERRALS)


async def test_profile_edit_replaces_it_and_the_timeline_names_fields_not_values(
    skipping_env: WorkflowEnvironment, worker: Worker
) -> None:
    handle = await discharged_on(skipping_env, worker, weekday=2)
    profile = PersonProfile(
        language="spa",
        interpreter_needed=True,
        caregivers=(
            Caregiver(
                name="Ana Doe", relationship="DAU", phone="4135550111", consent_to_contact=True
            ),
        ),
        contact_window=ContactWindow(start=time(9), end=time(12)),
        goals_of_care="walk to church by Christmas",
    )
    saved = await handle.execute_update(
        TransitionWorkflow.update_profile, ProfileRequest(by="rn.alvarez", profile=profile)
    )
    assert saved == profile
    state = await handle.query(TransitionWorkflow.get_state)
    assert state.profile.contactable_caregivers[0].name == "Ana Doe"
    tid = state.transition_id
    details = [
        e.detail
        for r in RECORDS
        if r.transition_id == tid
        for e in r.events
        if e.kind == "profile_updated"
    ]
    assert details == ["caregivers, contact_window, goals_of_care, interpreter_needed, language"]
    assert not any("Ana" in (d or "") or "4135550111" in (d or "") for d in details)
