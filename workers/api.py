"""The HTTP API: ADT intake (POST /adt, raw ER7 in, HL7 ACK out), the message browser, and
the transition routes (workers/api_transitions.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from activities.channels import Channels
from activities.notifications import RedeliveryBusy, redeliver
from ingest import batch
from ingest.browser import describe
from schemas.maintenance import Redelivery
from store import inbox, notifications, security
from workers.api_audit import audit_and_harden
from workers.api_audit import router as audit_router
from workers.api_care_plan import router as care_plan_router
from workers.api_codec import CodecCors
from workers.api_codec import router as codec_router
from workers.api_common import describe_errors, problem
from workers.api_common import services as services_of
from workers.api_limits import BodyLimit
from workers.api_transitions import router
from workers.auth import Role, require
from workers.health import health_router
from workers.runtime.services import Services
from workers.runtime.settings import get_settings
from workers.web import router as web_router

ER7_MEDIA_TYPE = "x-application/hl7-v2+er7"
MessageId = Annotated[int, Path(ge=1, le=2**63 - 1, description="inbox id")]
NotificationId = Annotated[int, Path(ge=1, le=2**63 - 1, description="notification id")]
ER7_CONTENT_TYPES = frozenset(
    {ER7_MEDIA_TYPE, "application/hl7-v2", "application/hl7-v2+er7", "text/plain"}
)

log = structlog.get_logger(__name__)


async def log_audit_anchors(svc: Services) -> None:
    """Every CAREBRIDGE_AUDIT_ANCHOR_MINUTES, the audit chain's anchor (id:hash, no PHI) goes
    to the log sink, outside the database: `carebridge audit verify --anchor` checks one."""
    while True:
        try:
            found = await security.latest_anchor(svc.pool)
            if found is not None:
                log.info("audit.anchor", anchor=str(found))
        except Exception as exc:  # the database may be away: try again next time
            log.warning("audit.anchor_failed", error_type=type(exc).__name__)
        await asyncio.sleep(svc.settings.audit_anchor_minutes * 60)


def _signed_in_docs(app: FastAPI) -> None:
    """/openapi.json and /docs for any signed-in role, when authentication is required."""
    signed_in = [Depends(require(*Role))]

    @app.get("/openapi.json", include_in_schema=False, dependencies=signed_in)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=signed_in)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="carebridge API")


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
        anchoring = asyncio.create_task(log_audit_anchors(owned))
        try:
            yield
        finally:
            anchoring.cancel()
            await owned.close()

    settings = services.settings if services is not None else get_settings()
    docs_open = not settings.auth_required  # else the API's description follows its auth
    app = FastAPI(
        title="carebridge",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs_open else None,
        redoc_url="/redoc" if docs_open else None,
        openapi_url="/openapi.json" if docs_open else None,
    )
    if services is not None:  # also without a lifespan (in-process test transports)
        app.state.services = services
    if not docs_open:
        _signed_in_docs(app)
    app.add_middleware(BodyLimit, limit=settings.max_message_bytes)  # inside the headers
    app.add_middleware(CodecCors, settings=settings)

    app.middleware("http")(audit_and_harden)
    svc = services_of
    app.include_router(router)
    app.include_router(care_plan_router)
    app.include_router(audit_router)
    app.include_router(web_router)
    app.include_router(codec_router)
    app.include_router(health_router(svc, database_gauges=True))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, "Invalid request", describe_errors(exc.errors()))

    @app.post("/adt", response_model=None, dependencies=[Depends(require(Role.INTEGRATION))])
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
        # One message or one batch, as over MLLP (two messages without a batch: AR).
        answer = await batch.answer(svc(request).intake, body)
        if not answer.replies:  # enhanced mode with MSH-15/16 = NE: nothing to acknowledge
            return Response(status_code=204)
        # Enhanced mode may ask for a commit and an application ACK; HTTP has one body: the last.
        return Response(content=answer.replies[-1], media_type=ER7_MEDIA_TYPE)

    @app.get("/notifications/undelivered", dependencies=[Depends(require(Role.OPERATOR))])
    async def undelivered_notifications(request: Request, limit: int = 100) -> list[dict[str, Any]]:
        """E-mails and pages that did not go out (refused, failed past their retries, or not
        configured), oldest first."""
        return await notifications.undelivered(svc(request).pool, min(max(limit, 1), 500))

    @app.get("/digests/undelivered", dependencies=[Depends(require(Role.OPERATOR))])
    async def undelivered_digests(request: Request) -> list[dict[str, Any]]:
        """The last week's team digests that did not go out, with the reason."""
        return await notifications.undelivered_digests(svc(request).pool)

    @app.post(
        "/notifications/{notification_id}/redeliver",
        dependencies=[Depends(require(Role.OPERATOR))],
        response_model=Redelivery,
    )
    async def redeliver_notification(
        request: Request, notification_id: NotificationId
    ) -> Redelivery | JSONResponse:
        """Send one undelivered e-mail or page again with its original idempotency key;
        one already delivered is not sent again (a retried request is harmless)."""
        services = svc(request)
        try:
            result = await redeliver(
                services.pool,
                Channels(services.settings.channel_settings),
                services.library.site.notifications,
                services.settings.public_url,
                notification_id,
            )
        except RedeliveryBusy as exc:
            return problem(409, "Conflict", str(exc))
        if result is None:
            return problem(404, "Not Found", f"no notification {notification_id}")
        return result

    @app.get("/messages", dependencies=[Depends(require(Role.OPERATOR))])
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

    @app.get("/messages/{message_id}", dependencies=[Depends(require(Role.OPERATOR))])
    async def get_message(request: Request, message_id: MessageId) -> dict[str, Any]:
        """One message: raw, parsed, and what it caused."""
        row = await inbox.get_message(svc(request).pool, message_id)
        if row is None:
            raise HTTPException(404, f"no message {message_id}")
        return describe(row, svc(request).library.site)

    @app.post("/messages/{message_id}/reprocess", dependencies=[Depends(require(Role.OPERATOR))])
    async def reprocess_message(request: Request, message_id: MessageId) -> dict[str, Any]:
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

    return app
