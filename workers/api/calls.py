"""The outreach call's outcome over HTTP: one form (whom it reached, what was learned) that
the workflow's record_call Update maps onto the steps it informs (workflows/
transition_calls.py); red-flag symptoms page a clinician at once."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field

from schemas.call import CallFindings, CallRecord
from schemas.transition import CallOutcomeRequest
from workers.api.common import IdempotencyKey, Svc
from workers.api.transitions import Actor, Clinical, update_transition

router = APIRouter(tags=["calls"])


class CallBody(Actor, CallFindings):
    at: AwareDatetime | None = Field(default=None, description="when the call was made")


@router.post("/transitions/{transition_id}/steps/{step_id}/calls", response_model=None)
async def record_call(
    svc: Svc,
    principal: Clinical,
    transition_id: str,
    step_id: str,
    body: CallBody,
    key: IdempotencyKey = None,
) -> CallRecord | JSONResponse:
    """Record a call on a call step: reaching the patient or caregiver completes it (at the
    call's time), a booked appointment goes on the follow-up visit, medication problems and
    social needs are evidence for their steps, red flags notify a clinician now."""
    return await update_transition(
        svc,
        principal,
        transition_id,
        "record_call",
        CallOutcomeRequest,
        body,
        CallRecord,
        key,
        step_id=step_id,
    )
