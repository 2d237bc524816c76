"""The HTTP API: ADT intake (POST /adt, raw ER7 in, HL7 ACK out) and transition views."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from ingest import keys
from ingest.browser import describe
from schemas.transition import CompleteStepRequest, StepState, TransitionState
from store import inbox, projection
from workers.services import Services
from workers.settings import get_settings
from workflows.transition import TransitionWorkflow

ER7_MEDIA_TYPE = "x-application/hl7-v2+er7"
ER7_CONTENT_TYPES = frozenset(
    {ER7_MEDIA_TYPE, "application/hl7-v2", "application/hl7-v2+er7", "text/plain"}
)


class CompleteStepBody(BaseModel):
    by: str
    outcome: str = "done"
    note: str | None = None


def problem(status: int, title: str, detail: str) -> JSONResponse:
    """An RFC 9457 problem body, for non-HL7 clients."""
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def create_app(services: Services | None = None) -> FastAPI:
    """The app; with no services given it connects its own (standalone `carebridge api`)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            yield
            return
        owned = await Services.connect(get_settings())
        app.state.services = owned
        try:
            yield
        finally:
            await owned.close()

    app = FastAPI(title="carebridge", version="0.1.0", lifespan=lifespan)

    def svc(request: Request) -> Services:
        found: Services = request.app.state.services
        return found

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/adt", response_model=None)
    async def post_adt(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ER7_CONTENT_TYPES:
            return problem(
                415,
                "Unsupported Media Type",
                f"send raw ER7 with Content-Type: {ER7_MEDIA_TYPE} (got {content_type or 'none'})",
            )
        body = await request.body()
        limit = svc(request).settings.max_message_bytes
        if len(body) > limit:
            return problem(413, "Payload Too Large", f"ADT messages are limited to {limit} bytes")
        result = await svc(request).intake.handle(body)
        if not result.replies:  # enhanced mode with MSH-15/16 = NE: nothing to acknowledge
            return Response(status_code=204)
        # Enhanced mode may ask for a commit and an application ACK; HTTP has one body: the last.
        return Response(content=result.replies[-1].encode(), media_type=ER7_MEDIA_TYPE)

    @app.get("/messages")
    async def list_messages(
        request: Request,
        status: str | None = None,
        type: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The ADT inbox, newest first (operators' message browser)."""
        return await inbox.list_messages(
            svc(request).pool,
            status=status,
            message_type=type,
            since=since,
            limit=min(max(limit, 1), 500),
        )

    @app.get("/messages/{message_id}")
    async def get_message(request: Request, message_id: int) -> dict[str, Any]:
        """One message: raw, parsed, and what it caused."""
        row = await inbox.get_message(svc(request).pool, message_id)
        if row is None:
            raise HTTPException(404, f"no message {message_id}")
        return describe(row, svc(request).library.site.calendar_zone())

    @app.post("/messages/{message_id}/reprocess")
    async def reprocess_message(request: Request, message_id: int) -> dict[str, Any]:
        """Run a stored message again after a fix; the new row links to the original."""
        try:
            result = await svc(request).intake.reprocess(message_id)
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from exc
        return {
            "inbox_id": result.inbox_id,
            "reprocessed_from": message_id,
            "ack_code": result.code.value,
            "status": result.status,
            "transition_id": result.transition_id,
        }

    @app.get("/transitions")
    async def list_transitions(
        request: Request, status: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        return await projection.list_transitions(
            svc(request).pool, status=status, limit=min(max(limit, 1), 1000)
        )

    @app.get("/transitions/{transition_id}")
    async def get_transition(request: Request, transition_id: str) -> TransitionState:
        handle = svc(request).client.get_workflow_handle_for(
            TransitionWorkflow.run, keys.workflow_id(transition_id)
        )
        try:
            return await handle.query(TransitionWorkflow.get_state)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise HTTPException(404, f"no transition {transition_id}") from exc
            raise

    @app.post("/transitions/{transition_id}/steps/{step_id}/complete", response_model=None)
    async def complete_step(
        request: Request, transition_id: str, step_id: str, body: CompleteStepBody
    ) -> StepState | JSONResponse:
        try:
            step_request = CompleteStepRequest(step_id=step_id, **body.model_dump())
        except ValueError as exc:
            return problem(422, "Invalid step completion", str(exc))
        handle = svc(request).client.get_workflow_handle_for(
            TransitionWorkflow.run, keys.workflow_id(transition_id)
        )
        try:
            return await handle.execute_update(TransitionWorkflow.complete_step, step_request)
        except WorkflowUpdateFailedError as exc:
            return problem(409, "Step not completed", str(exc.cause or exc))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return problem(404, "Not Found", f"no running transition {transition_id}")
            raise

    return app
