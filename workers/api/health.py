"""Health, readiness and Prometheus metrics routes, shared by the API and the MLLP listener's
health port (workers/http_server.py serves both). The API also serves the gauges it reads
from PostgreSQL at scrape time (workers/api/database_gauges.py), the listener never."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from workers.api import database_gauges as database_gauges_of
from workers.runtime.certificates import refresh_certificate_gauges
from workers.runtime.services import Services

READY_TIMEOUT_SECONDS = 2.0

DEPENDENCY_UP = Gauge(
    "carebridge_dependency_up",
    "Whether this process reached a dependency at its last readiness check (1) or not (0)",
    ["dependency"],
)


async def readiness(services: Services) -> dict[str, str]:
    """Each dependency as "ok" or the kind of failure, each bounded by READY_TIMEOUT_SECONDS;
    the carebridge_dependency_up gauge follows (the alert is on it, not on readiness)."""
    checks = {}
    try:
        await asyncio.wait_for(services.pool.fetchval("SELECT 1"), READY_TIMEOUT_SECONDS)
        checks["postgres"] = "ok"
    except Exception as exc:  # any failure means not ready; say which kind
        checks["postgres"] = type(exc).__name__
    try:
        await asyncio.wait_for(services.client.service_client.check_health(), READY_TIMEOUT_SECONDS)
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = type(exc).__name__
    for dependency, state in checks.items():
        DEPENDENCY_UP.labels(dependency=dependency).set(1 if state == "ok" else 0)
    return checks


def health_router(
    services_of: Callable[[Request], Services], *, database_gauges: bool
) -> APIRouter:
    """/healthz (the process is up), /readyz (this process can serve; dependencies in the
    body and a gauge), /metrics."""
    router = APIRouter()

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @router.get("/readyz", response_model=None)
    async def readyz(request: Request) -> dict[str, str]:
        """Whether this process can serve: 200 while it runs, also when PostgreSQL or
        Temporal is away (the API and the listener then answer 503 / AR themselves, which a
        sender retries; a NotReady fleet would refuse connections instead, and a database
        failover would take every endpoint away at once). The body and the
        carebridge_dependency_up gauge say what answers."""
        return {"status": "ready", **await readiness(services_of(request))}

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        refresh_certificate_gauges(services_of(request).settings)
        body = generate_latest()
        if database_gauges:
            try:
                await asyncio.wait_for(
                    database_gauges_of.refresh(services_of(request).pool), READY_TIMEOUT_SECONDS
                )
                body += database_gauges_of.exposition()
            except Exception:  # left out, not stale: the ADT series still matter
                pass
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
