"""The HTTP servers: one FastAPI app assembled from the API's routes (workers/api/) and the
web pages (workers/web/), served by `carebridge api` and inside `carebridge up`; and the MLLP
listener's small health app on its own port.

Every route lives in a module of its resource; this file only puts them together with the
middleware (body limit, codec CORS, audit and response hardening) and the error handler.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager

import structlog
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from store import security
from workers.api import (
    adt,
    audit,
    calls,
    care_plan,
    codec_server,
    feed,
    fhir_messages,
    fhir_read,
    messages,
    notifications,
    ownership,
    protocols,
    reports,
    transitions,
    trc_evidence,
)
from workers.api.auth import Role, require
from workers.api.common import describe_errors, problem
from workers.api.common import services as services_of
from workers.api.health import health_router
from workers.api.limits import BodyLimit
from workers.runtime.embedded import ensure_port_free
from workers.runtime.services import Services
from workers.runtime.settings import Settings, get_settings
from workers.web import pages

log = structlog.get_logger(__name__)


class EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the process that runs it owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


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
    """/openapi.json and /docs for any signed-in role."""
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
    # The API's description follows its auth: /docs and /openapi.json need a credential.
    app = FastAPI(
        title="carebridge",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    if services is not None:  # also without a lifespan (in-process test transports)
        app.state.services = services
    _signed_in_docs(app)
    app.add_middleware(BodyLimit, limit=settings.max_message_bytes)  # inside the headers
    app.add_middleware(codec_server.CodecCors, settings=settings)
    app.middleware("http")(audit.audit_and_harden)

    app.include_router(transitions.router)
    app.include_router(reports.router)
    app.include_router(protocols.router)
    app.include_router(care_plan.router)
    app.include_router(ownership.router)
    app.include_router(calls.router)
    app.include_router(trc_evidence.router)
    app.include_router(feed.router)
    app.include_router(audit.router)
    app.include_router(pages.router)
    app.include_router(codec_server.router)
    app.include_router(health_router(services_of, database_gauges=True))
    app.include_router(adt.router)
    app.include_router(notifications.router)
    app.include_router(messages.router)
    app.include_router(fhir_messages.router)
    app.include_router(fhir_read.router)

    app.add_exception_handler(pages.SignInRequired, pages.sign_in_page)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, "Invalid request", describe_errors(exc.errors()))

    return app


@asynccontextmanager
async def listener_health(services: Services, settings: Settings) -> AsyncIterator[None]:
    """The listener's health port (Kubernetes probes, Prometheus) while the block runs."""
    if not settings.listener_health_port:
        yield
        return
    ensure_port_free(
        settings.mllp_host,
        settings.listener_health_port,
        "listener's health endpoint",
        "CAREBRIDGE_LISTENER_HEALTH_PORT",
    )
    app = FastAPI(title="carebridge listener health", docs_url=None, redoc_url=None)
    app.include_router(health_router(lambda _: services, database_gauges=False))
    server = EmbeddedUvicorn(
        uvicorn.Config(
            app, host=settings.mllp_host, port=settings.listener_health_port, log_config=None
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        yield
    finally:
        server.should_exit = True
        await serving
