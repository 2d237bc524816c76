"""Who works a transition over HTTP: assign it (a supervisor, to anyone on the team), claim
it (a care manager, for themselves), and the supervisor's view of the team's load. The
change is the workflow's assign_transition Update, so it is validated there and recorded on
the timeline; the route's audit rows say who asked."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import Field

from schemas.transition import AssignRequest, Ownership
from schemas.worklist import CareManagerLoad
from store import team
from workers.api.auth import Principal, Role
from workers.api.common import IdempotencyKey, Svc, problem
from workers.api.transitions import Actor, Clinical, Supervisor, update_transition

router = APIRouter(tags=["ownership"])


class AssignBody(Actor):
    to: str = Field(description="the care manager's subject (a supervisor assigns anyone)")


def _may_assign_others(principal: Principal) -> bool:
    return principal.role in (Role.SUPERVISOR, Role.DEVELOPER)


def _claim(**fields: Any) -> AssignRequest:
    return AssignRequest(to=fields.get("by") or "", **fields)


@router.post("/transitions/{transition_id}/assign", response_model=None)
async def assign(
    svc: Svc, principal: Clinical, transition_id: str, body: AssignBody, key: IdempotencyKey = None
) -> Ownership | JSONResponse:
    """Give the transition to a care manager. A care manager may only name themselves (that
    is a claim); the same owner again changes nothing."""
    return await update_transition(
        svc,
        principal,
        transition_id,
        "assign_transition",
        AssignRequest,
        body,
        Ownership,
        key,
        supervisor=_may_assign_others(principal),
    )


@router.post("/transitions/{transition_id}/claim", response_model=None)
async def claim(
    svc: Svc, principal: Clinical, transition_id: str, body: Actor, key: IdempotencyKey = None
) -> Ownership | JSONResponse:
    """Take the transition as one's own (refused when someone else owns it: a supervisor
    reassigns); claiming one's own again changes nothing."""
    return await update_transition(
        svc,
        principal,
        transition_id,
        "assign_transition",
        _claim,
        body,
        Ownership,
        key,
        supervisor=False,
    )


@router.get("/team", response_model=None)
async def team_view(
    svc: Svc,
    principal: Supervisor,
    team_name: Annotated[str | None, Query(alias="team", max_length=200)] = None,
) -> list[CareManagerLoad] | JSONResponse:
    """Each care manager's open transitions (overdue and due today first) and today's calls,
    due and made; first the transitions nobody owns yet. A supervisor sees their care
    team's (the practice's, else the facility's)."""
    if principal.team and team_name not in (None, principal.team):
        return problem(
            403, "Forbidden", f"This token's team is {principal.team}: a supervisor sees their own."
        )
    return await team.overview(
        svc.pool, svc.library.site.calendar_zone(), principal.team or team_name
    )
