"""The person behind the discharge over HTTP: the care plan, the profile, the social needs
screening, resource referrals and the resource directory. Edits are workflow Updates (so
they are validated by the workflow and audited); PHI stays in the workflow's encrypted state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import Field

from schemas.care_plan import CarePlan, build_care_plan
from schemas.person import PersonProfile
from schemas.social_needs import HrsnAnswers, HrsnDomain, Referral, ReferralOutcome, Screening
from schemas.transition import (
    ProfileRequest,
    ReferralRequest,
    ScreeningRequest,
)
from workers.api.auth import READERS, require
from workers.api.common import IdempotencyKey, Svc, problem
from workers.api.transitions import Actor, Clinical, live_state, update_transition

router = APIRouter(tags=["care plan"])


class ProfileBody(Actor):
    profile: PersonProfile


class ScreeningBody(Actor):
    answers: HrsnAnswers


class ReferralOutcomeBody(Actor):
    outcome: ReferralOutcome
    note: str | None = None


class ReferralBody(ReferralOutcomeBody):
    resource_id: str = Field(description="an id from GET /resources")


@router.get("/transitions/{transition_id}/care-plan", dependencies=[Depends(require(*READERS))])
async def get_care_plan(svc: Svc, transition_id: str) -> CarePlan:
    """Goals, steps with owner and due time, barriers, resources, caregivers, what matters."""
    return build_care_plan(await live_state(svc, transition_id))


@router.put("/transitions/{transition_id}/profile", response_model=None)
async def update_profile(
    svc: Svc, principal: Clinical, transition_id: str, body: ProfileBody, key: IdempotencyKey = None
) -> PersonProfile | JSONResponse:
    return await update_transition(
        svc, principal, transition_id, "update_profile", ProfileRequest, body, PersonProfile, key
    )


@router.post("/transitions/{transition_id}/steps/{step_id}/screening", response_model=None)
async def record_screening(
    svc: Svc,
    principal: Clinical,
    transition_id: str,
    step_id: str,
    body: ScreeningBody,
    key: IdempotencyKey = None,
) -> Screening | JSONResponse:
    return await update_transition(
        svc,
        principal,
        transition_id,
        "record_screening",
        ScreeningRequest,
        body,
        Screening,
        key,
        step_id=step_id,
    )


@router.post("/transitions/{transition_id}/steps/{step_id}/referral", response_model=None)
async def close_referral(
    svc: Svc,
    principal: Clinical,
    transition_id: str,
    step_id: str,
    body: ReferralBody,
    key: IdempotencyKey = None,
) -> Referral | JSONResponse:
    """Close a referral with a resource from the site's directory and its outcome."""
    try:
        resource = svc.library.resource(body.resource_id)
    except KeyError:
        return problem(422, "Invalid request", f"no resource {body.resource_id!r} in the directory")
    closing = ReferralOutcomeBody.model_validate(body.model_dump(exclude={"resource_id"}))
    return await update_transition(
        svc,
        principal,
        transition_id,
        "close_referral",
        ReferralRequest,
        closing,
        Referral,
        key,
        step_id=step_id,
        resource=resource,
    )


@router.get("/resources", dependencies=[Depends(require(*READERS))])
async def list_resources(svc: Svc, domain: HrsnDomain | None = None) -> list[dict[str, Any]]:
    """The site's resource directory (protocols/resources.yaml), optionally for one domain."""
    entries = svc.library.resources_for(domain) if domain else svc.library.resources
    return [entry.model_dump(mode="json") for entry in entries]
