"""Every route, in development too (no setting turns authentication off): no token -> 401, a
role the route does not admit -> 403, an admitted role -> served (the development
administrator everywhere; test_secure_by_default: never in production); care
managers only on their steps; OIDC JWTs; the audit log records reads and changes, is
append-only, and `verify` finds an edited row."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from ingest.fhir_examples import discharge_bundle
from store import security
from tests.helpers import a03, find_free_port
from tests.integration.conftest import RunningStack, discharged_and_planned
from workers.api.auth import Role
from workers.http_server import create_app
from workers.runtime.services import Services
from workers.runtime.settings import Settings

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}
ROLES = [r for r in Role if r != Role.DEVELOPER]
TEAM = "AUTHTEAM"  # the supervisor token's team, and the facility its transitions come from
# Routes anyone may call (probes, the login form, the API's own description).
OPEN = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/login"),
    ("POST", "/login"),  # checks the credential it is given (test_web_sessions)
    ("POST", "/logout"),
}


def every_route(app: Any) -> set[tuple[str, str]]:
    """Every (method, path template) the app serves: the OpenAPI paths and the web pages."""
    from workers.web.pages import router as web_router

    found = {(m.upper(), p) for p, ops in app.openapi()["paths"].items() for m in ops}
    found |= {
        (m, r.path) for r in web_router.routes for m in getattr(r, "methods", ()) if m != "HEAD"
    }
    return found


def matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path.split("?")[0]) is not None


@dataclass
class Secured:
    http: httpx.AsyncClient
    tokens: dict[Role, str]
    services: Services

    def as_(self, role: Role | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}


@pytest_asyncio.fixture
async def secured(stack: RunningStack, settings: Settings) -> AsyncIterator[Secured]:
    """An app of the test's (development) settings, called without default credentials, and
    a token of every role (the development administrator's too)."""
    assert settings.environment == "development"  # no setting turns authentication off
    services = Services.build(settings, stack.services.pool, stack.services.client)
    tokens = {}
    for role in Role:
        _, token = await security.create_token(
            services.pool,
            name=f"test {role}",
            subject=f"user.{role.value}",
            role=role.value,
            team=TEAM if role == Role.SUPERVISOR else None,
        )
        tokens[role] = token
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://carebridge") as http:
        yield Secured(http, tokens, services)


async def discharge(secured: Secured, facility: str) -> str:
    return await discharged_and_planned(
        secured.http,
        secured.services.settings,
        facility,
        adt_headers=secured.as_(Role.INTEGRATION),
        read_headers=secured.as_(Role.OPERATOR),
    )


def fhir_notification() -> dict[str, Any]:
    bundle = discharge_bundle(datetime.now(UTC), facility=TEAM)
    return {"content": json.dumps(bundle), "headers": {"Content-Type": "application/fhir+json"}}


async def test_every_route_admits_exactly_its_roles(secured: Secured) -> None:
    tid = await discharge(secured, TEAM)
    message_id = (await secured.http.get("/messages", headers=secured.as_(Role.OPERATOR))).json()[
        0
    ]["id"]
    clinical = {Role.CARE_MANAGER, Role.SUPERVISOR}
    readers = clinical | {Role.OPERATOR}
    act = {"outcome": "done"}
    today = date.today()
    report = f"/reports/tcm?from={today - timedelta(days=30)}&to={today}"
    routes: list[tuple[str, str, dict[str, Any], set[Role]]] = [
        ("POST", "/adt", {"content": a03(), "headers": ER7}, {Role.INTEGRATION}),
        ("POST", "/fhir/$process-message", fhir_notification(), {Role.INTEGRATION}),
        ("POST", "/fhir/subscriptions/ehr", fhir_notification(), {Role.INTEGRATION}),
        ("GET", "/messages", {}, {Role.OPERATOR, Role.SUPERVISOR}),
        ("GET", f"/messages/{message_id}", {}, {Role.OPERATOR, Role.SUPERVISOR}),
        ("POST", f"/messages/{message_id}/reprocess", {}, {Role.OPERATOR}),
        ("GET", "/transitions", {}, readers),
        ("GET", f"/transitions/{tid}", {}, readers),
        ("GET", f"/transitions/{tid}/timeline", {}, readers),
        (
            "POST",
            f"/transitions/{tid}/steps/interactive_contact/attempts",
            {"json": {"result": "no_answer"}},
            clinical,
        ),
        (
            "POST",
            f"/transitions/{tid}/steps/follow_up_visit/reassign",
            {"json": {"to": "user.care_manager"}},
            {Role.SUPERVISOR},
        ),
        (
            "POST",
            f"/transitions/{tid}/steps/medication_reconciliation/complete",
            {"json": act},
            clinical,
        ),
        (
            "POST",
            f"/transitions/{tid}/steps/follow_up_visit/cancel",
            {"json": {"reason": "seen elsewhere"}},
            clinical,
        ),
        ("POST", f"/transitions/{tid}/notes", {"json": {"text": "called"}}, clinical),
        (
            "POST",
            f"/transitions/{tid}/steps/interactive_contact/snooze",
            {"json": {"until": "2031-01-01T00:00:00Z"}},
            clinical,
        ),
        ("GET", f"/transitions/{tid}/care-plan", {}, readers),
        ("PUT", f"/transitions/{tid}/profile", {"json": {}}, clinical),
        ("POST", f"/transitions/{tid}/steps/hrsn_screening/screening", {"json": {}}, clinical),
        ("POST", f"/transitions/{tid}/steps/hrsn_screening/referral", {"json": {}}, clinical),
        ("GET", "/resources", {}, readers),
        ("GET", f"/ui/transitions/{tid}/care-plan/print", {}, readers),
        ("GET", "/notifications/undelivered", {}, {Role.OPERATOR}),
        ("GET", "/digests/undelivered", {}, {Role.OPERATOR}),
        ("POST", "/notifications/1/redeliver", {}, {Role.OPERATOR}),
        ("GET", f"/ui/transitions/{tid}/care-plan", {}, readers),
        ("POST", f"/transitions/{tid}/assign", {"json": {"to": "user.care_manager"}}, clinical),
        ("POST", f"/transitions/{tid}/claim", {"json": {}}, clinical),
        (
            "POST",
            f"/transitions/{tid}/steps/interactive_contact/calls",
            {"json": {"reached": "nobody"}},
            clinical,
        ),
        (
            "POST",
            f"/transitions/{tid}/steps/follow_up_visit/correction",
            {"json": {"complexity": "high", "reason": "signed note"}},
            {Role.SUPERVISOR},
        ),
        (
            "POST",
            f"/transitions/{tid}/steps/follow_up_visit/undo-feed",
            {"json": {"reason": "the feed was wrong"}},
            {Role.SUPERVISOR},
        ),
        (
            "POST",
            f"/transitions/{tid}/filed",
            {"json": {"component": "discharge_information", "at": "2031-01-01T00:00:00Z"}},
            clinical,
        ),
        ("GET", "/team", {}, {Role.SUPERVISOR}),
        ("GET", "/ui/team", {}, {Role.SUPERVISOR}),
        ("GET", "/openapi.json", {}, set(ROLES)),  # the API's description follows its auth
        ("GET", "/docs", {}, set(ROLES)),
        (
            "GET",
            report,
            {},
            {Role.CARE_MANAGER, Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR},
        ),
        ("GET", "/protocols", {}, readers | {Role.AUDITOR}),
        ("POST", "/codec/encode", {"json": {"payloads": []}}, {Role.OPERATOR, Role.SUPERVISOR}),
        ("POST", "/codec/decode", {"json": {"payloads": []}}, {Role.OPERATOR, Role.SUPERVISOR}),
        ("GET", "/audit", {}, {Role.AUDITOR}),
        ("GET", "/", {}, readers),
        ("GET", "/dashboard", {}, readers),
        ("GET", f"/ui/transitions/{tid}", {}, readers),
        ("GET", "/fhir/metadata", {}, set(ROLES)),
        ("GET", "/fhir/Task", {}, readers),
        ("GET", f"/fhir/Task/{tid}-interactive-contact", {}, readers),
        ("GET", "/fhir/CarePlan", {}, readers),
        ("GET", f"/fhir/CarePlan/{tid}", {}, readers),
        ("GET", "/fhir/Patient/nobody", {}, readers),
        (
            "PATCH",
            f"/fhir/Task/{tid}-medication-reconciliation",  # completed above: 409 when admitted
            {"json": [{"op": "replace", "path": "/status", "value": "completed"}]},
            clinical,
        ),
    ]
    served = every_route(create_app(secured.services)) - OPEN
    untested = {
        (method, template)
        for method, template in served
        if not any(m == method and matches(template, path) for m, path, _, _ in routes)
    }
    assert not untested, f"routes without an authorization check here: {sorted(untested)}"
    for method, path, extra, admitted in routes:
        headers = extra.get("headers", {})
        request = {k: v for k, v in extra.items() if k != "headers"}
        anonymous = await secured.http.request(method, path, headers=headers, **request)
        assert anonymous.status_code == 401, (method, path, anonymous.status_code)
        for role in Role:
            response = await secured.http.request(
                method, path, headers={**headers, **secured.as_(role)}, **request
            )
            if role in admitted or role == Role.DEVELOPER:
                assert response.status_code not in (401, 403), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.status_code)
    for open_path in ("/healthz", "/metrics"):
        assert (await secured.http.get(open_path)).status_code == 200
    wrong = await secured.http.get("/transitions", headers={"Authorization": "Bearer cb_nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"


async def test_care_managers_act_only_on_their_steps_and_actions_carry_the_token_subject(
    secured: Secured,
) -> None:
    tid = await discharge(secured, TEAM)
    base = f"/transitions/{tid}/steps"
    moved = await secured.http.post(
        f"{base}/follow_up_visit/reassign",
        json={"to": "someone.else"},
        headers=secured.as_(Role.SUPERVISOR),
    )
    assert moved.json()["assignee"] == "someone.else"
    theirs = await secured.http.post(
        f"{base}/follow_up_visit/complete", json={}, headers=secured.as_(Role.CARE_MANAGER)
    )
    assert theirs.status_code == 403 and "assigned to someone.else" in theirs.json()["detail"]
    mine = await secured.http.post(
        f"{base}/interactive_contact/complete",
        json={"by": "an.impostor"},
        headers=secured.as_(Role.CARE_MANAGER),
    )
    assert mine.status_code == 200 and mine.json()["completed_by"] == "user.care_manager"


async def test_revoked_tokens_stop_working(secured: Secured) -> None:
    token_id, token = await security.create_token(
        secured.services.pool, name="temp", subject="temp", role="operator"
    )
    auth = {"Authorization": f"Bearer {token}"}
    assert (await secured.http.get("/messages", headers=auth)).status_code == 200
    assert await security.revoke_token(secured.services.pool, token_id)
    assert (await secured.http.get("/messages", headers=auth)).status_code == 401


async def test_oidc_jwt_from_the_configured_issuer(stack: RunningStack, settings: Settings) -> None:
    import uvicorn
    from fastapi import FastAPI

    from workers.http_server import EmbeddedUvicorn

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "k1"}
    issuer_app = FastAPI()

    @issuer_app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        return {"keys": [jwk]}

    port = find_free_port()
    server = EmbeddedUvicorn(uvicorn.Config(issuer_app, port=port, log_config=None))
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    oidc = settings.model_copy(
        update={
            "oidc_issuer": "https://idp.example.test",
            "oidc_audience": "carebridge",
            "oidc_jwks_url": f"http://127.0.0.1:{port}/jwks",
        }
    )
    services = Services.build(oidc, stack.services.pool, stack.services.client)

    def mint(**claims: Any) -> str:
        body = {
            "iss": "https://idp.example.test",
            "aud": "carebridge",
            "sub": "nurse.oidc",
            "exp": int(time.time()) + 300,
            "iat": int(time.time()),
            "roles": ["care_manager"],
        } | claims
        return jwt.encode(
            {k: v for k, v in body.items() if v is not None},  # None: leave the claim out
            key,
            algorithm="RS256",
            headers={"kid": "k1"},
        )

    try:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://cb") as http:
            good = await http.get("/transitions", headers={"Authorization": f"Bearer {mint()}"})
            assert good.status_code == 200
            missing = (mint(exp=None), mint(iat=None), mint(sub=None), mint(aud=None))
            refused = (mint(aud="other"), mint(iss="https://evil"), mint(exp=1), mint(roles=[]))
            for bad in (*refused, *missing):
                denied = await http.get("/transitions", headers={"Authorization": f"Bearer {bad}"})
                assert denied.status_code == 401
            auditor = await http.get(
                "/transitions", headers={"Authorization": f"Bearer {mint(roles=['auditor'])}"}
            )
            assert auditor.status_code == 403
    finally:
        server.should_exit = True
        await serving


async def audit_verify_cli(database_url: str) -> Any:
    """`carebridge audit verify`, in a thread (it runs its own event loop)."""
    from typer.testing import CliRunner

    from workers.cli.main import app
    from workers.runtime.settings import get_settings

    def invoke() -> Any:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(
                app, ["audit", "verify"], env={"CAREBRIDGE_DATABASE_URL": database_url}
            )
        finally:
            get_settings.cache_clear()

    return await asyncio.to_thread(invoke)


async def test_audit_rows_for_reads_and_changes_and_tampering_is_detected(
    secured: Secured, pool: asyncpg.Pool, database_url: str
) -> None:
    tid = await discharge(secured, TEAM)
    await secured.http.get(f"/transitions/{tid}", headers=secured.as_(Role.SUPERVISOR))
    await secured.http.post(
        f"/transitions/{tid}/notes", json={"text": "x"}, headers=secured.as_(Role.SUPERVISOR)
    )
    found = await secured.http.get(
        "/audit", params={"resource_id": tid}, headers=secured.as_(Role.AUDITOR)
    )
    actions = {(r["actor"], r["action"], r["outcome"]) for r in found.json()}
    assert ("user.supervisor", "GET /transitions/{transition_id}", "200") in actions
    assert ("user.supervisor", "POST /transitions/{transition_id}/notes", "200") in actions
    assert all(r["patient_key"] for r in found.json())  # the opaque key, not an MRN

    key = secured.services.settings.audit_chain_key
    first = await security.verify(pool, key)
    assert first.intact and first.checked > 0
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("UPDATE audit_log SET outcome = '200'")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM audit_log")
    target = found.json()[-1]["id"]
    original = await pool.fetchval("SELECT outcome FROM audit_log WHERE id = $1", target)
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        try:
            await conn.execute("UPDATE audit_log SET outcome = '403' WHERE id = $1", target)
            assert (await security.verify(pool, key)).broken == target
            tampered = await audit_verify_cli(database_url)
            assert tampered.exit_code == 1 and f"row {target} does not match" in tampered.output
            await conn.execute("UPDATE audit_log SET outcome = $2 WHERE id = $1", target, original)
        finally:
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
    assert (await security.verify(pool, key)).intact
    intact = await audit_verify_cli(database_url)
    assert intact.exit_code == 0 and "audit log intact" in intact.output


async def test_codec_endpoint_round_trip_and_web_login_cookie(secured: Secured) -> None:
    plain = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "eyJhIjogMX0="}]}
    operator = secured.as_(Role.OPERATOR)
    sealed = await secured.http.post("/codec/encode", json=plain, headers=operator)
    assert sealed.status_code == 200
    payload = sealed.json()["payloads"][0]
    assert payload["data"] != plain["payloads"][0]["data"]
    opened = await secured.http.post("/codec/decode", json=sealed.json(), headers=operator)
    assert opened.json()["payloads"][0]["data"] == plain["payloads"][0]["data"]
    garbage = await secured.http.post("/codec/decode", content=b"{nope", headers=operator)
    assert garbage.status_code == 422

    login = await secured.http.post(
        "/login", data={"token": secured.tokens[Role.CARE_MANAGER]}, follow_redirects=False
    )
    assert login.status_code == 303
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert secured.tokens[Role.CARE_MANAGER] not in cookie  # a session id, not the token
    session = cookie.split(";")[0]
    page = await secured.http.get("/", headers={"Cookie": session})
    assert page.status_code == 200 and "Worklist" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    forged = await secured.http.get("/", headers={"Cookie": "cb_session=forged"})
    assert forged.status_code == 401
    token_as_cookie = await secured.http.get(
        "/", headers={"Cookie": f"cb_token={secured.tokens[Role.CARE_MANAGER]}"}
    )
    assert token_as_cookie.status_code == 401  # the old token cookie is no credential
    unknown_field = await secured.http.post(
        "/transitions/x/notes",
        json={"text": "a", "admin": True},
        headers=secured.as_(Role.SUPERVISOR),
    )
    assert unknown_field.status_code == 422


async def test_scope_holds_for_whole_transition_actions_teamless_supervisors_and_reports(
    secured: Secured,
) -> None:
    """Issue 18 item 7: a note or profile edit used to pass for a care manager on anyone's
    patient, a supervisor without a team acted on everything, and a team supervisor read any
    facility's report through `facility=`."""
    tid = await discharge(secured, TEAM)
    state = (
        await secured.http.get(f"/transitions/{tid}", headers=secured.as_(Role.OPERATOR))
    ).json()
    for step in state["steps"]:
        moved = await secured.http.post(
            f"/transitions/{tid}/steps/{step['step_id']}/reassign",
            json={"to": "someone.else"},
            headers=secured.as_(Role.SUPERVISOR),
        )
        assert moved.status_code == 200, moved.text
    as_care_manager = secured.as_(Role.CARE_MANAGER)
    note = await secured.http.post(
        f"/transitions/{tid}/notes", json={"text": "not mine"}, headers=as_care_manager
    )
    profile = await secured.http.put(
        f"/transitions/{tid}/profile", json={"profile": {}}, headers=as_care_manager
    )
    assert (note.status_code, profile.status_code) == (403, 403), (note.text, profile.text)

    _, teamless = await security.create_token(
        secured.services.pool, name="no team", subject="sup.nobody", role="supervisor"
    )
    refused = await secured.http.post(
        f"/transitions/{tid}/notes",
        json={"text": "hello"},
        headers={"Authorization": f"Bearer {teamless}"},
    )
    assert refused.status_code == 403 and "no team" in refused.text

    period = "from=2031-01-01&to=2031-01-31"  # a fixed range: the scope, not the figures
    other = await secured.http.get(
        f"/reports/tcm?{period}&facility=ELSEWHERE", headers=secured.as_(Role.SUPERVISOR)
    )
    own = await secured.http.get(f"/reports/tcm?{period}", headers=secured.as_(Role.SUPERVISOR))
    assert (other.status_code, own.status_code) == (403, 200)
