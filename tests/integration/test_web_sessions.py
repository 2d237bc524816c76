"""Web sessions instead of tokens in URLs and cookies (issue 18 item 5): POST /login checks
the credential and issues a server-side session (idle and absolute expiry, Secure over TLS),
state-changing calls made with the session carry its CSRF token, logout ends it, a login
posted from another site is refused, and API tokens expire."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest_asyncio

from store import security
from tests.integration.conftest import RunningStack, discharged_and_planned
from workers.http_server import create_app
from workers.runtime.services import Services
from workers.runtime.settings import Settings

TEAM = "SESSTEAM"


@dataclass
class Site:
    http: httpx.AsyncClient
    services: Services
    token: str


@pytest_asyncio.fixture
async def site(stack: RunningStack, settings: Settings) -> AsyncIterator[Site]:
    services = Services.build(settings, stack.services.pool, stack.services.client)
    _, token = await security.create_token(
        services.pool, name="cm", subject="nurse.session", role="care_manager", team=TEAM
    )
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="https://cb.example.org") as http:
        yield Site(http, services, token)


async def sign_in(site: Site, token: str | None = None) -> str:
    login = await site.http.post(
        "/login", data={"token": token or site.token}, follow_redirects=False
    )
    assert login.status_code == 303, login.text
    return login.headers["set-cookie"]


def session_of(cookie: str) -> dict[str, str]:
    return {"Cookie": cookie.split(";")[0]}


async def discharge(site: Site) -> str:
    _, feed = await security.create_token(
        site.services.pool, name="feed", subject="feed", role="integration"
    )
    return await discharged_and_planned(
        site.http,
        site.services.settings,
        TEAM,
        adt_headers={"Authorization": f"Bearer {feed}"},
        read_headers={"Authorization": f"Bearer {site.token}"},
    )


async def test_login_checks_the_credential_and_sets_a_secure_session_cookie(site: Site) -> None:
    wrong = await site.http.post("/login", data={"token": "cb_not-a-token"}, follow_redirects=False)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    cookie = await sign_in(site)
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Max-Age="):
        assert flag in cookie, flag
    assert site.token not in cookie
    page = await site.http.get("/", headers=session_of(cookie))
    assert page.status_code == 200
    elsewhere = await site.http.post(
        "/login",
        data={"token": site.token},
        headers={"Origin": "https://evil.example.com"},
        follow_redirects=False,
    )
    assert elsewhere.status_code == 403 and "set-cookie" not in elsewhere.headers


async def test_a_session_needs_its_csrf_token_to_change_anything_and_logout_ends_it(
    site: Site,
) -> None:
    tid = await discharge(site)
    cookie = await sign_in(site)
    page = await site.http.get(f"/ui/transitions/{tid}", headers=session_of(cookie))
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert csrf is not None
    note = {"text": "called, no answer"}
    forged = await site.http.post(
        f"/transitions/{tid}/notes", json=note, headers=session_of(cookie)
    )
    assert forged.status_code == 403 and "CSRF" in forged.text
    done = await site.http.post(
        f"/transitions/{tid}/notes",
        json=note,
        headers={**session_of(cookie), "X-CSRF-Token": csrf.group(1)},
    )
    assert done.status_code == 200, done.text
    out = await site.http.post(
        "/logout", data={"csrf": csrf.group(1)}, headers=session_of(cookie), follow_redirects=False
    )
    assert out.status_code == 303
    assert (await site.http.get("/", headers=session_of(cookie))).status_code == 401


async def test_sessions_end_when_idle_or_old_and_tokens_expire(site: Site) -> None:
    idle = await sign_in(site)
    await site.services.pool.execute(
        "UPDATE web_sessions SET last_seen_at = now() - interval '31 minutes' "
        "WHERE subject = 'nurse.session' AND revoked_at IS NULL"
    )
    assert (await site.http.get("/", headers=session_of(idle))).status_code == 401
    old = await sign_in(site)
    await site.services.pool.execute(
        "UPDATE web_sessions SET expires_at = now() - interval '1 second' "
        "WHERE subject = 'nurse.session' AND revoked_at IS NULL"
    )
    assert (await site.http.get("/", headers=session_of(old))).status_code == 401
    _, short = await security.create_token(
        site.services.pool,
        name="short",
        subject="temp",
        role="care_manager",
        expires_in=timedelta(seconds=-1),
    )
    expired = await site.http.get("/transitions", headers={"Authorization": f"Bearer {short}"})
    assert expired.status_code == 401
    refused = await site.http.post("/login", data={"token": short}, follow_redirects=False)
    assert refused.status_code == 401
