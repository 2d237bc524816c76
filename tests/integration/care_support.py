"""A care team for the ownership, call-outcome and web-form tests: the stack's app with the
tokens of two care managers, a supervisor of the test's own team (facility),
an integration and an auditor; and discharges of that team, planned."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from store import security
from tests.conftest import TEST_KEYS
from tests.helpers import a03, assert_eventually, with_event
from tests.integration.conftest import RunningStack
from workers.http_server import create_app
from workers.runtime.services import Services
from workers.runtime.settings import Settings

ER7 = {"Content-Type": "x-application/hl7-v2+er7"}
STAFF = {
    "rn.alvarez": "care_manager",
    "rn.patel": "care_manager",
    "sup.kim": "supervisor",
    "feed": "integration",
    "auditor": "auditor",
}


@dataclass
class Team:
    http: httpx.AsyncClient
    services: Services
    facility: str
    tokens: dict[str, str]
    visits: dict[str, str] = field(default_factory=dict)  # transition id -> visit number

    def as_(self, subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[subject]}"}

    async def discharge(self, *, days_ago: float = 0) -> str:
        """An A03 of this team `days_ago` (plus 2 hours) ago; its transition id, planned."""
        visit = f"V{uuid.uuid4().hex[:8]}"
        discharged = datetime.now(UTC) - timedelta(days=days_ago, hours=2)
        sent = await self.http.post(
            "/adt",
            content=a03(facility=self.facility, visit=visit, discharged=discharged),
            headers={**ER7, **self.as_("feed")},
        )
        assert "|AA|" in sent.text, sent.text
        secret = self.services.settings.key_secret.get_secret_value()
        tid = keys.transition_id(keys.encounter_key(secret, self.facility, visit))
        self.visits[tid] = visit

        async def planned() -> None:
            state = await self.http.get(f"/transitions/{tid}", headers=self.as_("sup.kim"))
            assert state.status_code == 200 and state.json()["period_ends_at"]

        await assert_eventually(planned, within=30)
        return tid

    async def cancel(self, tid: str) -> None:
        """An A13 for the transition's visit: the discharge cancelled, the transition closed."""
        raw = with_event(a03(facility=self.facility, visit=self.visits[tid]), "A13")
        sent = await self.http.post("/adt", content=raw, headers={**ER7, **self.as_("feed")})
        assert "|AA|" in sent.text, sent.text

        async def closed() -> None:
            assert (await self.state(tid))["status"] == "cancelled"

        await assert_eventually(closed, within=30)

    async def state(self, tid: str) -> dict[str, Any]:
        found = await self.http.get(f"/transitions/{tid}", headers=self.as_("sup.kim"))
        assert found.status_code == 200, found.text
        state: dict[str, Any] = found.json()
        return state

    async def timeline(self, tid: str) -> list[dict[str, Any]]:
        found = await self.http.get(f"/transitions/{tid}/timeline", headers=self.as_("sup.kim"))
        events: list[dict[str, Any]] = found.json()
        return events


@asynccontextmanager
async def care_team(stack: RunningStack, settings: Settings) -> AsyncIterator[Team]:
    """The stack's services, the team's tokens, a client that sends no credential itself."""
    services = Services.build(settings, stack.services.pool, stack.services.client)
    facility = f"CARE{uuid.uuid4().hex[:6].upper()}"
    tokens = {}
    for subject, role in STAFF.items():
        _, tokens[subject] = await security.create_token(
            services.pool,
            name=f"test {subject}",
            subject=subject,
            role=role,
            team=facility if role == "supervisor" else None,
        )
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://carebridge") as http:
        yield Team(http, services, facility, tokens)


def cli_env(temporal_env: WorkflowEnvironment, database_url: str) -> dict[str, str]:
    """The environment `carebridge` commands run with against the test's servers."""
    return {
        "CAREBRIDGE_DATABASE_URL": database_url,
        "CAREBRIDGE_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "CAREBRIDGE_LOG_LEVEL": "WARNING",
        "CAREBRIDGE_CODEC_KEYS": TEST_KEYS,
    }
