"""The audit trail's rows for HTTP calls (DESIGN invariant 6): who, the route, the resource
and its patient key, the client's address (through trusted proxies only), the outcome. A
state-changing call gets its row before it acts ("attempt", see workers/api/auth.require) and
another with its outcome; a read, and a refusal (401, 403), one after."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

from fastapi import Request

from store import security
from workers.api.common import services

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
    "team": "team",
    "fhir": "fhir",
    "": "worklist",
}


def _route_of(request: Request) -> tuple[str, dict[str, Any]]:
    """The matched route's template and parameters (the router leaves them in the scope)."""
    route = request.scope.get("route")
    template = str(getattr(route, "path", request.url.path))
    return template, dict(request.scope.get("path_params", {}))


def is_audited(request: Request) -> bool:
    return request.url.path.strip("/").split("/")[0] in AUDITED


async def record_call(request: Request, actor: str, role: str, outcome: str) -> None:
    """The audit row for this request: who (or "anonymous"), the route, the resource and its
    patient key, the client's address (through trusted proxies), the outcome; a list that
    showed patients writes one such row per patient (`audit_shown`)."""
    first = request.url.path.strip("/").split("/")[0]
    template, params = _route_of(request)
    resource = (
        params.get("transition_id")
        or params.get("message_id")
        or params.get("notification_id")
        or params.get("kind")
        or getattr(request.state, "audit_resource", None)  # e.g. the workflows /codec decoded
    )
    svc = services(request)
    patient = None
    if params.get("transition_id"):
        patient = await security.patient_key_of(svc.pool, params["transition_id"])
    # a list that showed patients (a worklist page): one row per patient shown
    shown: list[tuple[str | None, str | None]] = getattr(request.state, "audit_shown", None) or [
        (str(resource)[:500] if resource is not None else None, patient)
    ]
    await security.record_each(
        svc.pool,
        key=svc.settings.audit_chain_key,
        actor=actor,
        role=role,
        action=f"{request.method} {template}",
        resource_type=AUDITED.get(first, first),
        shown=shown,
        source=client_address(request, svc.settings.trusted_proxy_networks),
        outcome=outcome,
    )


def audit_shown(request: Request, rows: list[dict[str, Any]]) -> None:
    """Have this request's audit row name each patient a list shows (transition id and
    patient key per row with a patient), instead of one row for the list."""
    request.state.audit_shown = [
        (row["transition_id"], row["patient_key"]) for row in rows if row.get("patient")
    ]


def client_address(request: Request, trusted: tuple[IPv4Network | IPv6Network, ...]) -> str | None:
    """The peer address, or, when the peer is a trusted proxy, the nearest address in its
    X-Forwarded-For that is not one (a client can write that header itself: never believed
    from an untrusted peer)."""
    peer = request.client.host if request.client else None
    if peer is None or not _within(peer, trusted):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop
    return peer


def _within(address: str, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
