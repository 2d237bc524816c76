"""Health, readiness and Prometheus metrics routes, shared by the API and the MLLP listener's
health port (workers/http_server.py serves both). The API also reads transition gauges from
PostgreSQL at scrape time (no identifiers: status, protocol and step ids only)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from store import notifications
from workers.runtime.services import Services

READY_TIMEOUT_SECONDS = 2.0

TRANSITIONS = Gauge(
    "carebridge_transitions", "Transitions in the projection, by status", ["status"]
)
STEPS_OVERDUE = Gauge(
    "carebridge_steps_overdue",
    "Overdue steps of active transitions, by protocol and step",
    ["protocol", "step"],
)
INBOX_UNSETTLED = Gauge(
    "carebridge_inbox_unsettled", "ADT messages stored but not answered (received, no ACK yet)"
)
DEPENDENCY_UP = Gauge(
    "carebridge_dependency_up",
    "Whether this process reached a dependency at its last readiness check (1) or not (0)",
    ["dependency"],
)
NOTIFICATIONS_UNDELIVERED = Gauge(
    "carebridge_notifications_undelivered",
    "E-mails and pages recorded in the outbox, and team digests of the last week, that did "
    "not go out",
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


async def refresh_database_gauges(pool: asyncpg.Pool) -> None:
    by_status = await pool.fetch("SELECT status, count(*) AS n FROM transitions GROUP BY status")
    overdue = await pool.fetch(
        """
        SELECT protocol_id, step, count(*) AS n
        FROM transitions, unnest(overdue_steps) AS step
        WHERE status = 'active'
        GROUP BY protocol_id, step
        """
    )
    unsettled = await pool.fetchval("SELECT count(*) FROM adt_inbox WHERE status = 'received'")
    TRANSITIONS.clear()
    for row in by_status:
        TRANSITIONS.labels(status=row["status"]).set(row["n"])
    STEPS_OVERDUE.clear()
    for row in overdue:
        STEPS_OVERDUE.labels(protocol=row["protocol_id"], step=row["step"]).set(row["n"])
    INBOX_UNSETTLED.set(unsettled)
    NOTIFICATIONS_UNDELIVERED.set(await notifications.count_undelivered(pool))


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
        if database_gauges:
            try:
                await asyncio.wait_for(
                    refresh_database_gauges(services_of(request).pool), READY_TIMEOUT_SECONDS
                )
            except Exception:  # the ADT series still matter when the database is down
                TRANSITIONS.clear()
                STEPS_OVERDUE.clear()
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
