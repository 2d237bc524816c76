"""Transitions over HTTP: worklists from the projection, live state from the workflow, and
step actions through the workflow's validated Updates (`update_transition`, which the care
plan routes use too)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, TypeVar

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from schemas import keys
from schemas.sentences import refusal as refusal_of
from schemas.transition import (
    AttemptRequest,
    AttemptResult,
    CancelStepRequest,
    CompleteStepRequest,
    Complexity,
    CorrectionRequest,
    Note,
    NoteRequest,
    ReassignRequest,
    SnoozeRequest,
    StepState,
    TransitionState,
)
from schemas.worklist import PatientSummary, TransitionQuery, TransitionView
from store import care_teams, people, projection, worklist
from workers.api.audit_trail import audit_shown
from workers.api.auth import CLINICAL, READERS, Principal, Role, require
from workers.api.common import IdempotencyKey, Svc, describe_errors, problem
from workers.runtime.services import Services
from workers.runtime.temporal import update_id
from workflows.transition import TransitionWorkflow

router = APIRouter(tags=["transitions"])
Clinical = Annotated[Principal, Depends(require(*CLINICAL))]
Reader = Annotated[Principal, Depends(require(*READERS))]
R = TypeVar("R")
Supervisor = Annotated[Principal, Depends(require(Role.SUPERVISOR))]


class Actor(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(
        default=None,
        description="ignored: the actor is the subject of the token or session that calls",
    )


class CompleteBody(Actor):
    outcome: str = "done"
    note: str | None = None
    complexity: Complexity | None = None
    occurred_on: date | None = Field(
        default=None, description="the day it was done (a visit: its date); default today"
    )


class CorrectionBody(Actor):
    occurred_on: date | None = None
    complexity: Complexity | None = None
    reason: str


class AttemptBody(Actor):
    result: AttemptResult
    note: str | None = None


class ReassignBody(Actor):
    to: str
    reason: str | None = None


class SnoozeBody(Actor):
    until: AwareDatetime
    reason: str


class CancelBody(Actor):
    reason: str


class NoteBody(Actor):
    text: str
    step_id: str | None = None


def workflow_handle(svc: Services, transition_id: str) -> WorkflowHandle[TransitionWorkflow, Any]:
    return svc.client.get_workflow_handle_for(
        TransitionWorkflow.run, keys.workflow_id(transition_id)
    )


async def update_transition(
    svc: Services,
    principal: Principal,
    transition_id: str,
    name: str,
    build: Any,
    body: BaseModel,
    result_type: type[R],
    idempotency_key: str | None = None,
    **extra: Any,
) -> R | JSONResponse:
    """Check who may act, validate with the workflow's own model (422), then run the Update
    (409 when the workflow refuses); the Update's result, or a problem response."""
    fields = body.model_dump()
    fields["by"] = principal.subject  # the actor is who the credential says, not the body
    try:
        request = build(**fields, **extra)
    except ValidationError as exc:
        return problem(422, "Invalid request", describe_errors(exc.errors()))
    handle = workflow_handle(svc, transition_id)
    try:
        refusal = await _scope_refusal(handle, svc.pool, principal, extra.get("step_id"))
        if refusal:
            return problem(403, "Forbidden", refusal)
        result: R = await handle.execute_update(
            name, request, id=update_id(name, idempotency_key), result_type=result_type
        )
        return result
    except WorkflowUpdateFailedError as exc:
        return problem(409, "Action refused", refusal_of(exc))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return await _not_running(handle, transition_id)
        raise


async def _not_running(handle: WorkflowHandle[Any, Any], transition_id: str) -> JSONResponse:
    """A closed transition takes no action (409, saying so); an unknown one is a 404."""
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return problem(404, "Not Found", f"no running transition {transition_id}")
        raise
    status = description.status.name.lower() if description.status else "closed"
    return problem(
        409,
        "Action refused",
        f"The transition is closed (its workflow {status}): nothing can change it now.",
    )


async def _scope_refusal(
    handle: WorkflowHandle[Any, Any],
    pool: asyncpg.Pool,
    principal: Principal,
    step_id: str | None,
) -> str | None:
    """Who may act on this transition. A token with a team acts on that care team's
    transitions only (the practice's, store/care_teams.py; else the facility's), and a
    supervisor must have one. A care manager acts on transitions they own or nobody owns
    (and on a step assigned to them in any): on the steps assigned to them or to nobody, and
    on the transition as a whole (notes, profile, screening, referrals, a claim) when they
    own it or one of its steps is theirs or nobody's."""
    if principal.role not in CLINICAL:
        return None
    state: TransitionState = await handle.query(TransitionWorkflow.get_state)
    if principal.team:
        team = await care_teams.team_of(pool, state.transition_id) or state.facility
        if team != principal.team:
            return f"the transition belongs to team {team}, not {principal.team}"
    if principal.role == Role.SUPERVISOR and not principal.team:
        return "a supervisor acts on their team's transitions, and this token names no team"
    if principal.role != Role.CARE_MANAGER:
        return None
    subject = principal.subject
    mine = (None, subject)
    step = next((s for s in state.steps if s.step_id == step_id), None) if step_id else None
    if state.owner not in mine and not (step is not None and step.assignee == subject):
        return f"The transition belongs to {state.owner}; ask a supervisor to reassign it."
    if step_id:
        if step is not None and step.assignee not in mine:
            return f"step {step_id} is assigned to {step.assignee}"
        return None
    if state.owner != subject and not any(s.assignee in mine for s in state.steps):
        return "every step of this transition is assigned to someone else"
    return None


@router.get("/transitions")
async def search_transitions(
    request: Request,
    svc: Svc,
    principal: Reader,
    response: Response,
    query: Annotated[TransitionQuery, Query()],
) -> list[dict[str, Any]]:
    """Worklist search over the Postgres projection (never scans Temporal); `assignee=me` is
    the caller; `owner=me` the caller's own patients, most urgent first (a step overdue, then
    one due today) unless another sort is asked for; `q` finds the patient by name, MRN,
    birth date or phone (blind indexes). Each row says who the patient is (`patient`) and
    lists its open steps bucketed (`due_steps`: overdue, due on the day, later); each patient
    shown is audited. The total number of matches is in the X-Total-Count header."""
    query = by_urgency(query.for_caller(principal.subject), "sort" in request.query_params)
    rows, total = await worklist.page(
        svc.pool, svc.field_cipher, svc.blind_index, query, svc.library.site
    )
    audit_shown(request, rows)
    response.headers["X-Total-Count"] = str(total)
    return rows


def by_urgency(query: TransitionQuery, explicit_sort: bool) -> TransitionQuery:
    """An owner's list ("my patients") is sorted by urgency unless a sort was asked for."""
    if query.owner is None or explicit_sort:
        return query
    return query.model_copy(update={"sort": "urgency"})


async def live_state(svc: Services, transition_id: str) -> TransitionState:
    """The workflow's state (a query); 404 when there is no such transition."""
    try:
        state: TransitionState = await workflow_handle(svc, transition_id).query(
            TransitionWorkflow.get_state
        )
        return state
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(404, f"no transition {transition_id}") from exc
        raise


async def patient_of(svc: Services, state: TransitionState) -> PatientSummary | None:
    """Who the transition's patient is (the registry), aged on its facility's today."""
    keys = await people.patient_keys(svc.pool, [state.transition_id])
    today = datetime.now(svc.library.site.zone_for(state.facility)).date()
    found = await people.of_transitions(
        svc.pool, svc.field_cipher, keys, {state.transition_id: today}
    )
    return found.get(state.transition_id)


@router.get("/transitions/{transition_id}", dependencies=[Depends(require(*READERS))])
async def get_transition(svc: Svc, transition_id: str) -> TransitionView:
    """Live state (a workflow query) and who the patient is (the registry)."""
    state = await live_state(svc, transition_id)
    return TransitionView(**dict(state), patient=await patient_of(svc, state))


@router.get("/transitions/{transition_id}/timeline", dependencies=[Depends(require(*READERS))])
async def get_timeline(svc: Svc, transition_id: str) -> list[dict[str, Any]]:
    """ADT events, step outcomes, escalations and notes, in order (from the projection)."""
    return await projection.timeline(svc.pool, transition_id)


@router.post("/transitions/{transition_id}/steps/{step_id}/complete", response_model=None)
async def complete_step(
    svc: Svc,
    principal: Clinical,
    transition_id: str,
    step_id: str,
    body: CompleteBody,
    key: IdempotencyKey = None,
) -> StepState | Note | JSONResponse:
    return await update_transition(
        svc,
        principal,
        transition_id,
        "complete_step",
        CompleteStepRequest,
        body,
        StepState,
        key,
        step_id=step_id,
    )


@router.post("/transitions/{transition_id}/steps/{step_id}/correction", response_model=None)
async def correct_step(
    svc: Svc,
    principal: Supervisor,
    transition_id: str,
    step_id: str,
    body: CorrectionBody,
    key: IdempotencyKey = None,
) -> StepState | JSONResponse:
    """A supervisor corrects a completed step: the day it was done, the visit's complexity."""
    return await update_transition(
        svc,
        principal,
        transition_id,
        "correct_step",
        CorrectionRequest,
        body,
        StepState,
        key,
        step_id=step_id,
    )


@router.post("/transitions/{transition_id}/steps/{step_id}/attempts", response_model=None)
async def record_attempt(
    svc: Svc,
    principal: Clinical,
    transition_id: str,
    step_id: str,
    body: AttemptBody,
    key: IdempotencyKey = None,
) -> StepState | Note | JSONResponse:
    return await update_transition(
        svc,
        principal,
        transition_id,
        "record_attempt",
        AttemptRequest,
        body,
        StepState,
        key,
        step_id=step_id,
    )


@router.post("/transitions/{transition_id}/steps/{step_id}/reassign", response_model=None)
async def reassign_step(
    svc: Svc,
    principal: Supervisor,
    transition_id: str,
    step_id: str,
    body: ReassignBody,
    key: IdempotencyKey = None,
) -> StepState | Note | JSONResponse:
    return await update_transition(
        svc,
        principal,
        transition_id,
        "reassign",
        ReassignRequest,
        body,
        StepState,
        key,
        step_id=step_id,
    )


@router.post("/transitions/{transition_id}/steps/{step_id}/snooze", response_model=None)
async def snooze_step(
    svc: Svc,
    principal: Clinical,
    transition_id: str,
    step_id: str,
    body: SnoozeBody,
    key: IdempotencyKey = None,
) -> StepState | Note | JSONResponse:
    return await update_transition(
        svc,
        principal,
        transition_id,
        "snooze",
        SnoozeRequest,
        body,
        StepState,
        key,
        step_id=step_id,
    )


@router.post("/transitions/{transition_id}/steps/{step_id}/cancel", response_model=None)
async def cancel_step(
    svc: Svc,
    principal: Clinical,
    transition_id: str,
    step_id: str,
    body: CancelBody,
    key: IdempotencyKey = None,
) -> StepState | Note | JSONResponse:
    return await update_transition(
        svc,
        principal,
        transition_id,
        "cancel_step",
        CancelStepRequest,
        body,
        StepState,
        key,
        step_id=step_id,
    )


@router.post("/transitions/{transition_id}/notes", response_model=None)
async def add_note(
    svc: Svc, principal: Clinical, transition_id: str, body: NoteBody, key: IdempotencyKey = None
) -> StepState | Note | JSONResponse:
    return await update_transition(
        svc, principal, transition_id, "add_note", NoteRequest, body, Note, key
    )
