"""The FHIR door out: /fhir/metadata, CarePlan and Task search and read, and a Task's
completion (PATCH status to completed) through the step's `complete_step` Update. The same
tokens and roles as the API, audited like its reads of patient data (one row a patient
shown); errors are OperationOutcomes. What is served is validated against the R4B models."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from temporalio.service import RPCError, RPCStatusCode

from ingest.fhir_outcome import outcome
from schemas.transition import CompleteStepRequest, StepState, TransitionState
from store import aliases, fhir_search, registry
from workers.api import fhir_care
from workers.api.auth import READERS, Role, require
from workers.api.common import IdempotencyKey, Svc
from workers.api.fhir_messages import fhir_response
from workers.api.transitions import Clinical, CompleteBody, update_transition, workflow_handle
from workers.runtime.services import Services

router = APIRouter(tags=["fhir"])
DEFAULT_COUNT, MAX_COUNT = 10, 50
MAX_VALUE = 200
QUERY_TIMEOUT = timedelta(seconds=5)  # a workflow no worker answers for waits no longer
RELEASED = "2026-12-01"  # the CapabilityStatement's date: when this FHIR surface last changed
TASK_STATUSES = frozenset(fhir_care.TASK_STATUS.values())
CARE_PLAN_STATUSES = frozenset({"active", "completed", "revoked"})
JSON_PATCH = "application/json-patch+json"


class FhirError(Exception):
    def __init__(self, status: int, code: str, text: str) -> None:
        super().__init__(text)
        self.status, self.code, self.text = status, code, text

    def response(self) -> JSONResponse:
        return fhir_response(self.status, outcome("error", self.code, self.text))


def _validated(resource: dict[str, Any]) -> dict[str, Any]:
    """Served only once the R4B model accepts it (a failure here is carebridge's bug)."""
    from fhir.resources.R4B import get_fhir_model_class

    get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    return resource


def _text(value: str | None) -> str | None:
    """A search value or id as sent; refused when no id could be it (control characters,
    PostgreSQL cannot even compare a NUL, or longer than any carebridge key)."""
    if value is not None and (len(value) > MAX_VALUE or not value.isprintable()):
        raise FhirError(400, "value", f"search values and ids are printable, {MAX_VALUE} at most.")
    return value


def _reference(value: str | None, kind: str) -> str | None:
    """`Patient/abc`, or `abc`, as `abc`; a reference to another type is refused."""
    if _text(value) is None:
        return None
    assert value is not None
    if "/" in value:
        prefix, _, value = value.rpartition("/")
        if prefix.rsplit("/", 1)[-1] != kind:
            raise FhirError(400, "value", f"the search parameter needs a {kind} reference.")
    return value or None


def _count(request: Request) -> tuple[int, int]:
    """`_count` (transitions a page, 1..50) and `_page` (from 1)."""
    try:
        count = int(request.query_params.get("_count", DEFAULT_COUNT))
        page = int(request.query_params.get("_page", 1))
    except ValueError:
        raise FhirError(400, "value", "_count and _page are whole numbers.") from None
    if not 1 <= count <= MAX_COUNT or page < 1:
        raise FhirError(400, "value", f"_count is 1 to {MAX_COUNT} and _page at least 1.")
    return count, page


def _status(request: Request, allowed: frozenset[str]) -> frozenset[str] | None:
    raw = request.query_params.get("status")
    if raw is None:
        return None
    wanted = frozenset(part.strip() for part in raw.split(",") if part.strip())
    if not wanted <= allowed:
        raise FhirError(400, "value", f"status is one or more of {', '.join(sorted(allowed))}.")
    return wanted


UNREADABLE = "unreadable"  # a workflow Temporal cannot answer for now


@dataclass
class Page:
    """A search's transitions with their live states, the next page's URL when there may be
    one, and how many found transitions could not be read now (Temporal or a worker away)."""

    states: list[tuple[TransitionState, str | None]]
    next_url: str | None = None
    unreadable: int = 0


async def _states(svc: Services, found: list[fhir_search.Found]) -> Page:
    """The live states (workflow queries, concurrently); a transition whose workflow is gone
    (past Temporal's retention) is left out, one that cannot be read now is counted."""

    async def one(item: fhir_search.Found) -> tuple[TransitionState, str | None] | str | None:
        try:
            state: TransitionState = await workflow_handle(svc, item.transition_id).query(
                "get_state", result_type=TransitionState, rpc_timeout=QUERY_TIMEOUT
            )
        except RPCError as exc:
            return None if exc.status == RPCStatusCode.NOT_FOUND else UNREADABLE
        return state, item.patient_key

    results = await asyncio.gather(*(one(item) for item in found))
    return Page(
        [r for r in results if isinstance(r, tuple)],
        unreadable=sum(1 for r in results if r == UNREADABLE),
    )


async def _search(request: Request, svc: Svc, *, transition_id: str | None = None) -> Page:
    """The page of transitions a search names (its states read live)."""
    count, page = _count(request)
    patient = _reference(request.query_params.get("patient"), "Patient")
    if patient:
        patient = await aliases.resolve(svc.pool, patient)
    owner = _text(request.query_params.get("owner"))
    if owner is not None:
        owner = owner.rpartition("|")[2]  # a token search may name the system: system|value
        if owner == "me":
            owner = request.state.principal.subject
    based_on = _reference(request.query_params.get("based-on"), "CarePlan")
    found = await fhir_search.transitions(
        svc.pool,
        patient_key=patient,
        owner=owner or None,
        transition_id=transition_id or based_on,
        limit=count + 1,
        offset=(page - 1) * count,
    )
    next_url = None
    if len(found) > count:
        found = found[:count]
        next_url = str(request.url.include_query_params(_page=page + 1))
    result = await _states(svc, found)
    result.next_url = next_url
    request.state.audit_shown = [(s.transition_id, key) for s, key in result.states if key]
    return result


def _searchset(request: Request, resources: list[dict[str, Any]], page: Page) -> JSONResponse:
    """The searchset; transitions that could not be read now are said in an OperationOutcome
    entry (search mode outcome), not left out silently."""
    bundle = fhir_care.searchset(resources, str(request.url), page.next_url)
    if page.unreadable:
        text = (
            f"{page.unreadable} transition(s) of this page could not be read now (Temporal or "
            "its worker is away) and are not shown; search again."
        )
        bundle["entry"].append(
            {"resource": outcome("warning", "transient", text), "search": {"mode": "outcome"}}
        )
    return fhir_response(200, _validated(bundle))


PERIOD_PREFIXES = ("eq", "lt", "le", "gt", "ge")


def _periods(request: Request) -> list[tuple[str, datetime, datetime]]:
    """`period` (repeatable): a prefix (eq, lt, le, gt, ge; eq when none) and a FHIR date or
    dateTime, as the range it names ([day, next day) for a date; UTC without an offset)."""
    found = []
    for value in request.query_params.getlist("period"):
        prefix = value[:2] if value[:2] in PERIOD_PREFIXES else "eq"
        text = value[2:] if value[:2] in PERIOD_PREFIXES else value
        try:
            start = datetime.fromisoformat(text)
        except ValueError:
            raise FhirError(
                400, "value", "period is a date or dateTime, e.g. period=le2026-12-05."
            ) from None
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
        end = start + (timedelta(days=1) if len(text) == 10 else timedelta(seconds=1))
        found.append((prefix, start, end))
    return found


def _due_within(due: datetime | None, periods: list[tuple[str, datetime, datetime]]) -> bool:
    """Whether a step's due time (`restriction.period.end`) meets every `period` given."""
    if not periods:
        return True
    if due is None:
        return False
    tests = {
        "eq": lambda start, end: start <= due < end,
        "lt": lambda start, end: due < start,
        "le": lambda start, end: due < end,
        "gt": lambda start, end: due >= end,
        "ge": lambda start, end: due >= start,
    }
    return all(tests[prefix](start, end) for prefix, start, end in periods)


def _owned(state: TransitionState, step: StepState, owner: str | None) -> bool:
    return owner is None or fhir_care.owner_of(state, step) == owner


@router.get("/fhir/metadata", dependencies=[Depends(require(*Role))])
async def metadata(request: Request) -> JSONResponse:
    """The CapabilityStatement: what this server does, and nothing it does not."""
    version = request.app.version
    return fhir_response(200, _validated(fhir_care.capability_statement(version, RELEASED)))


@router.get("/fhir/Task", response_model=None, dependencies=[Depends(require(*READERS))])
async def search_tasks(request: Request, svc: Svc) -> JSONResponse:
    """One Task a step of the transitions found (`patient`, `owner`, `based-on`), filtered by
    `status` and by due time (`period`); paged by transition (`_count` transitions a page,
    `_page`)."""
    try:
        statuses = _status(request, TASK_STATUSES)
        periods = _periods(request)
        page = await _search(request, svc)
    except FhirError as error:
        return error.response()
    owner = request.query_params.get("owner")
    owner = request.state.principal.subject if owner == "me" else owner
    now = datetime.now(UTC)
    tasks = [
        fhir_care.task(state, step, key, now)
        for state, key in page.states
        for step in state.steps
        if _owned(state, step, owner.rpartition("|")[2] if owner else None)
        and _due_within(step.due_at, periods)
    ]
    tasks = [t for t in tasks if statuses is None or t["status"] in statuses]
    return _searchset(request, tasks, page)


@router.get("/fhir/CarePlan", response_model=None, dependencies=[Depends(require(*READERS))])
async def search_care_plans(request: Request, svc: Svc) -> JSONResponse:
    """One CarePlan a transition (`patient`, `status`), paged like Task."""
    try:
        statuses = _status(request, CARE_PLAN_STATUSES)
        page = await _search(request, svc)
    except FhirError as error:
        return error.response()
    plans = [fhir_care.care_plan(state, key) for state, key in page.states]
    plans = [p for p in plans if statuses is None or p["status"] in statuses]
    return _searchset(request, plans, page)


async def _one(
    request: Request, svc: Services, transition_id: str
) -> tuple[TransitionState, str | None]:
    page = await _search(request, svc, transition_id=_text(transition_id))
    if page.unreadable:
        raise FhirError(
            503,
            "transient",
            f"transition {transition_id} cannot be read now (Temporal or its worker is away); "
            "try again.",
        )
    if not page.states:
        raise FhirError(404, "not-found", f"there is no transition {transition_id}.")
    return page.states[0]


@router.get(
    "/fhir/CarePlan/{plan_id}", response_model=None, dependencies=[Depends(require(*READERS))]
)
async def read_care_plan(request: Request, svc: Svc, plan_id: str) -> JSONResponse:
    try:
        state, key = await _one(request, svc, plan_id)
    except FhirError as error:
        return error.response()
    return fhir_response(200, _validated(fhir_care.care_plan(state, key)))


async def _task_of(
    request: Request, svc: Services, value: str
) -> tuple[TransitionState, StepState, str | None]:
    try:
        transition_id, written = fhir_care.split_task_id(value)
    except ValueError as exc:
        raise FhirError(404, "not-found", str(exc)) from None
    state, key = await _one(request, svc, transition_id)
    step = fhir_care.step_of(state, written)
    if step is None:
        raise FhirError(404, "not-found", f"transition {transition_id} has no Task {value}.")
    return state, step, key


@router.get("/fhir/Task/{task_id}", response_model=None, dependencies=[Depends(require(*READERS))])
async def read_task(request: Request, svc: Svc, task_id: str) -> JSONResponse:
    try:
        state, step, key = await _task_of(request, svc, task_id)
    except FhirError as error:
        return error.response()
    return fhir_response(200, _validated(fhir_care.task(state, step, key, datetime.now(UTC))))


def completion_note(body: Any) -> str | None:
    """The note of a patch that completes a Task: a JSON Patch (`replace /status completed`,
    optionally `add /note` with a text) or a Task body with `status: completed` and `note`.
    FhirError (422) for any other change: only completion goes through FHIR."""
    if isinstance(body, dict) and body.get("resourceType") == "Task":
        ops = [{"op": "replace", "path": f"/{k}", "value": v} for k, v in body.items()]
        ops = [op for op in ops if op["path"] not in ("/resourceType", "/id")]
    elif isinstance(body, list):
        ops = body
    else:
        raise FhirError(400, "structure", "send a JSON Patch array or a Task resource.")
    completes, note = False, None
    for op in ops:
        path = op.get("path") if isinstance(op, dict) else None
        value = op.get("value") if isinstance(op, dict) else None
        if path == "/status" and op.get("op") in ("replace", "add") and value == "completed":
            completes = True
        elif path in ("/note", "/note/-", "/note/0") and op.get("op") in ("add", "replace"):
            notes = value if isinstance(value, list) else [value]
            note = "; ".join(str(n.get("text", "")) for n in notes if isinstance(n, dict))
        else:
            raise FhirError(
                422,
                "not-supported",
                "only a Task's completion (status to completed, with an optional note) can "
                "be patched here.",
            )
    if not completes:
        raise FhirError(422, "not-supported", "the patch must set status to completed.")
    return note or None


@router.patch("/fhir/Task/{task_id}", response_model=None)
async def complete_task(
    request: Request,
    svc: Svc,
    principal: Clinical,
    task_id: str,
    key: IdempotencyKey = None,
) -> JSONResponse:
    """Complete a step through the workflow's `complete_step` Update and its validator: 409
    with an OperationOutcome when it refuses (a step already done, a closed transition)."""
    try:
        try:
            body = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise FhirError(400, "structure", "the body is not JSON.") from None
        note = completion_note(body)
        state, step, patient_key = await _task_of(request, svc, task_id)
    except FhirError as error:
        return error.response()
    done = await update_transition(
        svc,
        principal,
        state.transition_id,
        "complete_step",
        CompleteStepRequest,
        CompleteBody(note=note),
        StepState,
        key,
        step_id=step.step_id,
    )
    if isinstance(done, JSONResponse):  # a problem body: the same status, as OperationOutcome
        problem = json.loads(bytes(done.body))
        code = {403: "forbidden", 404: "not-found", 409: "business-rule"}.get(
            done.status_code, "invalid"
        )
        return fhir_response(done.status_code, outcome("error", code, str(problem["detail"])))
    assert isinstance(done, StepState)
    updated = state.model_copy(
        update={"steps": [done if s.step_id == done.step_id else s for s in state.steps]}
    )
    return fhir_response(
        200, _validated(fhir_care.task(updated, done, patient_key, datetime.now(UTC)))
    )


@router.get(
    "/fhir/Patient/{patient_id}", response_model=None, dependencies=[Depends(require(*READERS))]
)
async def read_patient(request: Request, svc: Svc, patient_id: str) -> JSONResponse:
    """Who a patient key is, from the registry (a merged-away key reads its survivor)."""
    try:
        key = _text(patient_id) or ""
    except FhirError as error:
        return error.response()
    key = await aliases.resolve(svc.pool, key)
    record = await registry.get_patient(svc.pool, svc.field_cipher, key)
    request.state.audit_shown = [(f"Patient/{key}", key)]
    if record is None:
        return FhirError(404, "not-found", f"there is no Patient {patient_id}.").response()
    return fhir_response(200, _validated(fhir_care.patient(record)))
