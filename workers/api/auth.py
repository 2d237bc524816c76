"""Authentication and roles for the API and the web pages.

A caller presents a bearer token: a carebridge API token (hashed in Postgres, `carebridge
tokens`, with an expiry) or, when an issuer is configured, an OIDC JWT checked against the
issuer's JWKS. A browser presents a session cookie instead, issued by POST /login once the
credential is checked (store/sessions.py): its state-changing calls must carry the
session's CSRF token (X-CSRF-Token), since a cookie travels with requests other sites make.
Every route states the roles it admits (`require(...)`). A request without credentials is
refused in every environment: on a laptop, `carebridge up` gives the development
administrator a token file and a one-time sign-in URL (workers/api/dev_access.py).
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

import jwt
from fastapi import HTTPException, Request

from store import security, sessions
from workers.api.audit_trail import is_audited, record_call
from workers.api.common import services
from workers.runtime.settings import Settings


class Role(StrEnum):
    CARE_MANAGER = "care_manager"  # acts on the steps assigned to them (or unassigned)
    SUPERVISOR = "supervisor"  # acts on the team's transitions, reassigns
    OPERATOR = "operator"  # message browser, reprocess, codec; no clinical edits
    INTEGRATION = "integration"  # POST /adt only
    AUDITOR = "auditor"  # reads the audit log
    # The development administrator (`carebridge up`'s dev-token and sign-in URL): admitted
    # wherever any role is, in development only; its credentials are refused in production.
    DEVELOPER = "developer"


CLINICAL = (Role.CARE_MANAGER, Role.SUPERVISOR)
READERS = (*CLINICAL, Role.OPERATOR)  # who reads a transition, its care plan, the protocols
MESSAGE_READERS = (Role.OPERATOR, Role.SUPERVISOR)  # who sees raw ADT messages (PHI), as /codec
SESSION_COOKIE = "cb_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    team: str | None = None
    via: str = "token"  # token, jwt, session; code: a one-time sign-in code, at /login only
    csrf_token: str | None = None  # a session's: its state-changing calls must send it


# A JWT without an expiry would be a password that never changes; without an audience, a
# token the issuer minted for another application would be accepted here.
REQUIRED_CLAIMS = ("exp", "iat", "sub", "aud", "iss")


@lru_cache(maxsize=4)
def _jwks(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def admissible(role: str, settings: Settings) -> bool:
    """The development administrator's credentials count in development only."""
    return role != Role.DEVELOPER or settings.environment == "development"


async def principal_of_credential(request: Request, token: str) -> Principal | None:
    """Who an API token or a JWT names, or None (unknown, revoked, expired, invalid, or a
    development administrator's in production)."""
    settings = services(request).settings
    if token.startswith(security.TOKEN_PREFIX):
        found = await security.find_token(services(request).pool, token)
        if found is None or not admissible(found.role, settings):
            return None
        return Principal(subject=found.subject, role=Role(found.role), team=found.team)
    return await asyncio.to_thread(_from_jwt, token, settings)


def _from_jwt(token: str, settings: Settings) -> Principal | None:
    """Blocking (the JWKS fetch): called in a thread."""
    if not settings.oidc_issuer or not settings.oidc_jwks_url:
        return None
    try:
        key = _jwks(settings.oidc_jwks_url).get_signing_key_from_jwt(token).key
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256", "ES256"],
            audience=settings.oidc_audience,
            issuer=settings.oidc_issuer,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.PyJWTError:
        return None
    granted = claims.get(settings.oidc_role_claim, [])
    granted = [granted] if isinstance(granted, str) else granted
    roles = [Role(r) for r in granted if r in Role.__members__.values() and r != Role.DEVELOPER]
    if not roles or not claims.get("sub"):
        return None
    return Principal(subject=str(claims["sub"]), role=roles[0], team=claims.get("team"), via="jwt")


async def authenticate(request: Request) -> Principal | None:
    """Who the request's bearer token or session cookie names; None without either, or when
    it names nobody (anonymous callers are refused in development too)."""
    token = _bearer(request)
    if token is not None:
        return await principal_of_credential(request, token)
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        return None
    settings = services(request).settings
    idle = timedelta(minutes=settings.session_idle_minutes)
    found = await sessions.find_session(services(request).pool, session_id, idle)
    if found is None or not admissible(found.role, settings):
        return None
    return Principal(
        subject=found.subject,
        role=Role(found.role),
        team=found.team,
        via="session",
        csrf_token=found.csrf_token,
    )


async def _audit_attempt(request: Request, principal: Principal) -> None:
    """A change is in the audit log before it is made: if its row cannot be written, the
    change is refused (503), never made unaudited."""
    try:
        await record_call(request, principal.subject, principal.role.value, "attempt")
    except Exception as exc:
        raise HTTPException(
            503, f"the audit log cannot be written ({type(exc).__name__}): nothing was changed"
        ) from None


def require(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: 401 without valid credentials, 403 for a role the route does not admit."""
    admitted = set(roles) | {Role.DEVELOPER}

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if principal is None:
            raise HTTPException(
                401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"}
            )
        request.state.principal = principal
        if principal.via == "session":  # the pages put it in their state-changing calls
            request.state.csrf_token = principal.csrf_token
            request.state.signed_in = True
            sent = request.headers.get(CSRF_HEADER, "")
            forged = not (principal.csrf_token and hmac.compare_digest(sent, principal.csrf_token))
            if request.method not in SAFE_METHODS and forged:
                raise HTTPException(403, "the page's CSRF token is missing or wrong: reload it")
        if principal.role not in admitted:
            raise HTTPException(403, f"the {principal.role.value} role may not do this")
        if request.method not in SAFE_METHODS and is_audited(request):
            await _audit_attempt(request, principal)
        return principal

    dependency.__name__ = f"require_{'_'.join(r.value for r in roles)}"
    return dependency
