"""Transitions over HTTP: worklists from the projection, live state from the workflow, and
step actions through the workflow's validated Updates."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, Field, ValidationError
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from ingest import keys
from schemas.transition import (
    AttemptRequest,
    AttemptResult,
    CancelStepRequest,
    CompleteStepRequest,
    Complexity,
    Note,
    NoteRequest,
    ReassignRequest,
    SnoozeRequest,
    StepState,
    TransitionState,
)
from schemas.worklist import TransitionQuery
from store import projection, reports
from workers.api_common import problem, services
from workers.services import Services
from workflows.transition import TransitionWorkflow

router = APIRouter(tags=["transitions"])
Svc = Annotated[Services, Depends(services)]


class Actor(BaseModel):
    by: str = Field(description="who acts")


class CompleteBody(Actor):
    outcome: str = "done"
    note: str | None = None
    complexity: Complexity | None = None


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


def _handle(svc: Services, transition_id: str) -> WorkflowHandle[TransitionWorkflow, Any]:
    return svc.client.get_workflow_handle_for(
        TransitionWorkflow.run, keys.workflow_id(transition_id)
    )


async def _update(
    svc: Services, transition_id: str, name: str, build: Any, body: BaseModel, **extra: Any
) -> StepState | Note | JSONResponse:
    """Validate with the workflow's own model (422), then run the Update (409 if refused)."""
    try:
        request = build(**body.model_dump(), **extra)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return problem(422, "Invalid request", details)
    try:
        result: StepState | Note = await _handle(svc, transition_id).execute_update(
            name, request, result_type=Note if name == "add_note" else StepState
        )
        return result
    except WorkflowUpdateFailedError as exc:
        return problem(409, "Action refused", str(exc.cause or exc))
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return problem(404, "Not Found", f"no running transition {transition_id}")
        raise


@router.get("/transitions")
async def search_transitions(
    svc: Svc, response: Response, query: Annotated[TransitionQuery, Query()]
) -> list[dict[str, Any]]:
    """Worklist search over the Postgres projection (never scans Temporal). The total number
    of matches is in the X-Total-Count header."""
    rows, total = await projection.search(svc.pool, query, svc.library.site.calendar_zone())
    response.headers["X-Total-Count"] = str(total)
    return rows


@router.get("/transitions/{transition_id}")
async def get_transition(svc: Svc, transition_id: str) -> TransitionState:
    """Live state: a workflow query."""
    try:
        return await _handle(svc, transition_id).query(TransitionWorkflow.get_state)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise HTTPException(404, f"no transition {transition_id}") from exc
        raise


@router.get("/transitions/{transition_id}/timeline")
async def get_timeline(svc: Svc, transition_id: str) -> list[dict[str, Any]]:
    """ADT events, step outcomes, escalations and notes, in order (from the projection)."""
    return await projection.timeline(svc.pool, transition_id)


@router.post("/transitions/{transition_id}/steps/{step_id}/complete", response_model=None)
async def complete_step(
    svc: Svc, transition_id: str, step_id: str, body: CompleteBody
) -> StepState | Note | JSONResponse:
    return await _update(
        svc, transition_id, "complete_step", CompleteStepRequest, body, step_id=step_id
    )


@router.post("/transitions/{transition_id}/steps/{step_id}/attempts", response_model=None)
async def record_attempt(
    svc: Svc, transition_id: str, step_id: str, body: AttemptBody
) -> StepState | Note | JSONResponse:
    return await _update(
        svc, transition_id, "record_attempt", AttemptRequest, body, step_id=step_id
    )


@router.post("/transitions/{transition_id}/steps/{step_id}/reassign", response_model=None)
async def reassign_step(
    svc: Svc, transition_id: str, step_id: str, body: ReassignBody
) -> StepState | Note | JSONResponse:
    return await _update(svc, transition_id, "reassign", ReassignRequest, body, step_id=step_id)


@router.post("/transitions/{transition_id}/steps/{step_id}/snooze", response_model=None)
async def snooze_step(
    svc: Svc, transition_id: str, step_id: str, body: SnoozeBody
) -> StepState | Note | JSONResponse:
    return await _update(svc, transition_id, "snooze", SnoozeRequest, body, step_id=step_id)


@router.post("/transitions/{transition_id}/steps/{step_id}/cancel", response_model=None)
async def cancel_step(
    svc: Svc, transition_id: str, step_id: str, body: CancelBody
) -> StepState | Note | JSONResponse:
    return await _update(
        svc, transition_id, "cancel_step", CancelStepRequest, body, step_id=step_id
    )


@router.post("/transitions/{transition_id}/notes", response_model=None)
async def add_note(svc: Svc, transition_id: str, body: NoteBody) -> StepState | Note | JSONResponse:
    return await _update(svc, transition_id, "add_note", NoteRequest, body)


@router.get("/reports/{kind}", response_model=None)
async def get_report(
    svc: Svc,
    kind: reports.ReportKind,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    facility: str | None = None,
    format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | Response:
    """TCM, HEDIS TRC or 30-day readmissions for discharges between two site dates."""
    if end < start:
        return problem(422, "Invalid request", "'to' is before 'from'")
    result = await reports.report(svc.pool, svc.library, kind, start, end, facility)
    if format == "csv":
        return Response(
            reports.to_csv(kind, result["rows"]),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{kind}-{start}-{end}.csv"'},
        )
    return result


@router.get("/protocols")
async def list_protocols(svc: Svc) -> list[dict[str, Any]]:
    """Every protocol (latest version) and the site's selection table."""
    return [p.model_dump(mode="json") for p in svc.library.all_latest()]
