"""The audit trail of the API: every authenticated call to a route that reads or changes
patient data is appended (who, role, what, which resource and patient key, from where,
outcome); auditors search it. Also the response hardening every page gets."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from store import security
from workers.api_common import services
from workers.auth import Principal, Role, require

router = APIRouter(tags=["audit"])
AUDITED = {
    "transitions": "transition",
    "messages": "message",
    "reports": "report",
    "codec": "codec",
    "adt": "adt",
    "audit": "audit",
    "ui": "transition",
    "dashboard": "dashboard",
    "notifications": "notification",
    "digests": "digest",
    "": "worklist",
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# The pages' own scripts run with this request's nonce: no inline handler, no other origin.
PAGE_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# FastAPI's /docs and /redoc load Swagger UI and ReDoc from their CDN.
DOCS_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; img-src 'self' data: "
    "https://fastapi.tiangolo.com https://cdn.redoc.ly; worker-src blob:; "
    "frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")


def content_security_policy(path: str, nonce: str) -> str:
    if path.startswith(DOCS_PATHS):
        return DOCS_POLICY
    return PAGE_POLICY.format(nonce=nonce)


def _route_of(request: Request) -> tuple[str, dict[str, Any]]:
    """The matched route's template and parameters (the router leaves them in the scope)."""
    route = request.scope.get("route")
    template = str(getattr(route, "path", request.url.path))
    return template, dict(request.scope.get("path_params", {}))


async def audit_and_harden(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    request.state.csp_nonce = nonce = secrets.token_urlsafe(16)
    response = await call_next(request)
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    response.headers.setdefault(
        "Content-Security-Policy", content_security_policy(request.url.path, nonce)
    )
    principal: Principal | None = getattr(request.state, "principal", None)
    first = request.url.path.strip("/").split("/")[0]
    if principal is None or first not in AUDITED:
        return response
    template, params = _route_of(request)
    resource = (
        params.get("transition_id")
        or params.get("message_id")
        or params.get("notification_id")
        or params.get("kind")
    )
    pool = services(request).pool
    patient = None
    if params.get("transition_id"):
        patient = await pool.fetchval(
            "SELECT patient_key FROM encounters WHERE transition_id = $1 LIMIT 1",
            params["transition_id"],
        )
    await security.record(
        pool,
        key=services(request).settings.audit_chain_key,
        actor=principal.subject,
        role=principal.role.value,
        action=f"{request.method} {template}",
        resource_type=AUDITED[first],
        resource_id=str(resource) if resource is not None else None,
        patient_key=patient,
        source=request.client.host if request.client else None,
        outcome=str(response.status_code),
    )
    return response


@router.get("/audit", dependencies=[Depends(require(Role.AUDITOR))])
async def search_audit(
    request: Request,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    resource_id: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    """Who read or changed what, newest first."""
    return await security.search(
        services(request).pool, actor=actor, resource_id=resource_id, since=since, limit=limit
    )
