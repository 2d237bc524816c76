"""Secure by default, also on a laptop (issue 17 item 6): in development no route that shows
patients answers without credentials; `carebridge up` gives the development administrator
a one-time sign-in URL (the code works once, then is refused) and a private token file that
the API and the README's curl line use; the pages without a session show the login page and
no PHI; page actions are recorded under the signed-in person; and the development
administrator does not exist in production."""

from __future__ import annotations

import io
import re
import stat
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from rich.console import Console

from store import login_codes, security
from tests.conftest import TEST_KEYS
from tests.helpers import a03, assert_eventually, msa, with_person_fields
from tests.integration.conftest import (
    RunningStack,
    assert_projected,
    bearer,
    discharged_and_planned,
    run_cli,
)
from tests.integration.test_auth_and_audit import OPEN, every_route
from workers.api import dev_access
from workers.http_server import create_app
from workers.runtime.services import Services
from workers.runtime.settings import Settings
from workers.stack import banner

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}
PAGES = ("/", "/ui/transitions/{tid}", "/ui/transitions/{tid}/care-plan", "/dashboard")
CAREGIVER = ("JOHN DOE", "(617)555-0142")  # PHI with_person_fields puts in the message
PRODUCTION_SECRET = "a-production-key-secret-of-forty-characters"


def code_of(url: str) -> str:
    found = re.search(r"/login\?code=([A-Za-z0-9_-]+)$", url)
    assert found is not None, url
    return found.group(1)


async def exchange(stack: RunningStack, url: str) -> httpx.Response:
    """Open a sign-in URL as a browser would, in a client of its own (no cookie kept)."""
    async with httpx.AsyncClient(base_url=stack.http.base_url) as browser:
        return await browser.get(url, follow_redirects=False)


def session_of(response: httpx.Response) -> dict[str, str]:
    return {"Cookie": response.headers["set-cookie"].split(";")[0]}


@pytest.fixture
def laptop(settings: Settings, tmp_path: Path) -> Settings:
    """The test's development settings with a state folder of its own (for dev-token)."""
    return settings.model_copy(update={"state_dir": tmp_path / "state"})


async def test_without_credentials_every_route_that_shows_patients_answers_401(
    stack: RunningStack,
) -> None:
    assert stack.services.settings.environment == "development"
    routes = every_route(create_app(stack.services)) - OPEN
    assert {("GET", "/transitions"), ("GET", "/ui/transitions/{transition_id}")} <= routes
    for method, template in sorted(routes):
        path = re.sub(r"\{[^}]+\}", "1", template)
        response = await stack.anonymous.request(method, path)
        assert response.status_code == 401, (method, template, response.status_code)
    listed = await stack.anonymous.get("/transitions")
    assert listed.headers["www-authenticate"] == "Bearer"
    assert (await stack.anonymous.get("/healthz")).status_code == 200  # probes stay open


async def test_a_one_time_code_signs_in_once_and_is_then_refused(stack: RunningStack) -> None:
    pool = stack.services.pool
    url = await dev_access.issue_login_url(pool, stack.services.settings)
    assert url.startswith(f"{stack.services.settings.api_url}/login?code=")
    code = code_of(url)
    assert await pool.fetchval("SELECT count(*) FROM login_codes WHERE code_hash = $1", code) == 0
    stored = security.hash_token(code)  # only its hash is kept
    assert await pool.fetchval("SELECT count(*) FROM login_codes WHERE code_hash = $1", stored) == 1

    first = await exchange(stack, f"/login?code={code}")
    assert first.status_code == 303 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and code not in cookie
    worklist = await stack.anonymous.get("/", headers=session_of(first))
    assert worklist.status_code == 200 and "dev-admin" in worklist.text

    again = await exchange(stack, f"/login?code={code}")
    assert again.status_code == 401 and "set-cookie" not in again.headers
    assert "used already or has expired" in again.text
    expired = await login_codes.issue_code(
        pool, subject="dev-admin", role="developer", lifetime=timedelta(seconds=-1)
    )
    late = await exchange(stack, f"/login?code={expired}")
    assert late.status_code == 401 and "set-cookie" not in late.headers
    unknown = await exchange(stack, "/login?code=not-a-code")
    assert unknown.status_code == 401


async def test_login_url_prints_a_fresh_code_for_the_running_stack(
    stack: RunningStack, database_url: str
) -> None:
    port = str(stack.http.base_url.port)
    env = {"CAREBRIDGE_DATABASE_URL": database_url, "CAREBRIDGE_API_PORT": port}
    printed = [await run_cli(env, "login-url") for _ in range(2)]
    assert all(result.exit_code == 0 for result in printed), [r.output for r in printed]
    urls = [result.output.strip() for result in printed]
    assert urls[0] != urls[1] and all(
        url.startswith(f"http://127.0.0.1:{port}/login?code=") for url in urls
    )
    for url in urls:  # each one works, once
        assert (await exchange(stack, url)).status_code == 303
        assert (await exchange(stack, url)).status_code == 401


async def test_the_dev_token_file_is_private_reused_while_valid_and_works_for_adt_and_reads(
    stack: RunningStack, laptop: Settings
) -> None:
    pool = stack.services.pool
    path = await dev_access.ensure_dev_token(pool, laptop)
    assert path == laptop.state_dir / "dev-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = path.read_text().strip()
    auth = {"Authorization": f"Bearer {token}"}
    facility = f"DEV{uuid.uuid4().hex[:5].upper()}"
    sent = await stack.anonymous.post("/adt", content=a03(facility=facility), headers=ER7)
    assert sent.status_code == 401
    sent = await stack.anonymous.post(
        "/adt", content=a03(facility=facility), headers={**ER7, **auth}
    )
    assert msa(sent.text)[1] == "AA", sent.text

    async def listed() -> None:
        found = await stack.anonymous.get(
            "/transitions", params={"facility": facility}, headers=auth
        )
        assert found.status_code == 200 and len(found.json()) == 1

    await assert_eventually(listed)

    assert await dev_access.ensure_dev_token(pool, laptop) == path
    assert path.read_text().strip() == token  # valid: reused
    found = await security.find_token(pool, token)
    assert found is not None and (found.subject, found.role) == ("dev-admin", "developer")
    await security.revoke_token(pool, found.id)
    await dev_access.ensure_dev_token(pool, laptop)
    renewed = path.read_text().strip()
    assert renewed != token and await security.find_token(pool, renewed) is not None
    await pool.execute(
        "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        security.hash_token(renewed),
    )
    await dev_access.ensure_dev_token(pool, laptop)
    after_expiry = path.read_text().strip()
    assert after_expiry != renewed and stat.S_IMODE(path.stat().st_mode) == 0o600

    path.chmod(0o644)  # others could read it: replaced, and its token no longer works
    await dev_access.ensure_dev_token(pool, laptop)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert await security.find_token(pool, after_expiry) is None
    assert dev_access.read_dev_token(laptop) == path.read_text().strip() != after_expiry


async def test_up_prints_the_sign_in_url_and_the_token_file_the_curl_line_uses(
    stack: RunningStack, laptop: Settings
) -> None:
    access = await dev_access.prepare(stack.services.pool, laptop)
    output = io.StringIO()
    banner(Console(file=output, width=300), laptop, access)
    printed = output.getvalue()
    assert access.login_url in printed and "carebridge login-url" in printed
    token_file = laptop.state_dir / "dev-token"
    assert access.token_file == token_file and stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert f'-H "Authorization: Bearer $(cat {token_file})"' in printed
    assert (await exchange(stack, f"/login?code={code_of(access.login_url)}")).status_code == 303


async def test_pages_without_a_session_show_the_login_page_and_no_patient(
    stack: RunningStack,
) -> None:
    facility = f"NOSES{uuid.uuid4().hex[:4].upper()}"
    answer = await stack.post_adt(with_person_fields(a03(facility=facility)))
    assert msa(answer.text)[1] == "AA"
    await assert_projected(stack.services.pool, facility, 1, within=60)
    tid = await stack.services.pool.fetchval(
        "SELECT transition_id FROM transitions WHERE facility = $1", facility
    )

    async def shown_when_signed_in() -> None:
        plan = await stack.http.get(f"/ui/transitions/{tid}/care-plan")
        assert all(value in plan.text for value in CAREGIVER)

    await assert_eventually(shown_when_signed_in)
    for cookie in ({}, {"Cookie": "cb_session=forged"}):
        for template in PAGES:
            page = await stack.anonymous.get(template.format(tid=tid), headers=cookie)
            assert page.status_code == 401, template
            assert 'id="login"' in page.text and "sign in to see this page" in page.text
            assert tid not in page.text and facility not in page.text, template
            assert not any(value in page.text for value in CAREGIVER), template


async def test_page_actions_are_recorded_under_the_signed_in_person(stack: RunningStack) -> None:
    facility = f"PGACT{uuid.uuid4().hex[:4].upper()}"
    tid = await discharged_and_planned(stack.http, stack.services.settings, facility)
    signed_in = await exchange(stack, await stack.login_url("rn.page", "care_manager"))
    session = session_of(signed_in)
    page = await stack.anonymous.get(f"/ui/transitions/{tid}", headers=session)
    assert page.status_code == 200
    assert 'id="actor"' not in page.text and "Acting as" not in page.text
    assert "rn.page (care manager)" in page.text
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert csrf is not None
    as_page = {**session, "X-CSRF-Token": csrf.group(1)}
    done = await stack.anonymous.post(
        f"/transitions/{tid}/steps/interactive_contact/complete",
        json={"by": "someone.else", "outcome": "reached"},
        headers=as_page,
    )
    assert done.status_code == 200, done.text
    assert done.json()["completed_by"] == "rn.page"
    note = await stack.anonymous.post(
        f"/transitions/{tid}/notes", json={"text": "called back"}, headers=as_page
    )
    assert note.json()["by"] == "rn.page"
    rows = await security.search(stack.services.pool, actor="rn.page", resource_id=tid)
    assert {r["action"] for r in rows} >= {
        "POST /transitions/{transition_id}/steps/{step_id}/complete",
        "POST /transitions/{transition_id}/notes",
    }


@pytest_asyncio.fixture
async def production(stack: RunningStack, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An app of production settings on the same database, called without credentials (the
    same key secret: its audit rows chain like every other test's)."""
    strict = settings.model_copy(update={"environment": "production"})
    services = Services.build(strict, stack.services.pool, stack.services.client)
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="https://cb.example.org") as http:
        yield http


async def test_the_development_administrator_does_not_exist_in_production(
    stack: RunningStack, production: httpx.AsyncClient, database_url: str
) -> None:
    pool = stack.services.pool
    developer = await bearer(pool, "dev-admin")
    operator = await bearer(pool, "ops.prod", "operator")
    assert (await production.get("/transitions", headers=operator)).status_code == 200
    assert (await production.get("/transitions", headers=developer)).status_code == 401
    assert (await stack.http.get("/transitions", headers=developer)).status_code == 200  # dev
    signed = await production.post("/login", data={"token": developer["Authorization"][7:]})
    assert signed.status_code == 401 and "set-cookie" not in signed.headers
    code = await login_codes.issue_code(pool, subject="dev-admin", role="developer")
    redeemed = await production.get(f"/login?code={code}", follow_redirects=False)
    assert redeemed.status_code == 401 and "set-cookie" not in redeemed.headers

    env = {  # refused before any audit row (the CLI's would be keyed by this secret)
        "CAREBRIDGE_DATABASE_URL": database_url,
        "CAREBRIDGE_ENVIRONMENT": "production",
        "CAREBRIDGE_KEY_SECRET": PRODUCTION_SECRET,
        "CAREBRIDGE_CODEC_KEYS": TEST_KEYS,
    }
    refused = await run_cli(
        env, "tokens", "create", "--name", "x", "--subject", "x", "--role", "developer"
    )
    assert refused.exit_code == 1 and "development only" in refused.output
    no_url = await run_cli(env, "login-url")
    assert no_url.exit_code == 1 and "for development only" in no_url.output
