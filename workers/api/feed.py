"""Undoing the feed over HTTP: a supervisor reverses an automatic change (the visit an A04
completed, the appointment an SIU booked) when the feed was wrong, with a reason; the
workflow's undo_feed Update refuses a step the feed has not changed."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from schemas.transition import FeedChange, StepState, UndoFeedRequest
from workers.api.common import IdempotencyKey, Svc
from workers.api.transitions import Actor, Supervisor, update_transition

router = APIRouter(tags=["transitions"])


class UndoBody(Actor):
    undo: FeedChange = FeedChange.COMPLETION
    reason: str


@router.post("/transitions/{transition_id}/steps/{step_id}/undo-feed", response_model=None)
async def undo_feed(
    svc: Svc,
    principal: Supervisor,
    transition_id: str,
    step_id: str,
    body: UndoBody,
    key: IdempotencyKey = None,
) -> StepState | JSONResponse:
    """Undo the feed's completion (default) or appointment of the step; a repeat changes
    nothing."""
    return await update_transition(
        svc,
        principal,
        transition_id,
        "undo_feed",
        UndoFeedRequest,
        body,
        StepState,
        key,
        step_id=step_id,
    )
