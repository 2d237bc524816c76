"""The audit trail of the API: every authenticated call to a route that reads or changes
patient data is appended (who, role, what, which resource and patient key, from where,
outcome); auditors search it. Also the response hardening every page gets."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response

from store import security
from workers.api.audit_trail import AUDITED, record_call
from workers.api.auth import SAFE_METHODS, Principal, Role, require
from workers.api.common import problem, services

router = APIRouter(tags=["audit"])
log = structlog.get_logger(__name__)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` with the
    # pages' own form posts, and the login form's origin check refused every sign-in.
    "Referrer-Policy": "same-origin",
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
    refused = response.status_code == 401  # who tried, and failed to say who they are
    if first not in AUDITED or (principal is None and not refused):
        return response
    actor, role = (principal.subject, principal.role.value) if principal else ("anonymous", "none")
    try:
        await record_call(request, actor, role, str(response.status_code))
    except Exception as exc:
        log.error("audit.not_recorded", error_type=type(exc).__name__)
        if request.method in SAFE_METHODS:  # a read not in the log is not shown
            return problem(503, "Service Unavailable", "the audit log cannot be written")
        # a change: its "attempt" row is there; the outcome is in the response only
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
