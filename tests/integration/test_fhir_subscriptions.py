"""carebridge as a REST-hook subscriber (R5 Backport, R4) on the real stack, against a local
FHIR server the test runs (tests/integration/fhir_source.py): handshake and heartbeat, an
id-only event fetched from the source with its credentials, a full-resource event, and a
gap in the event numbers caught up with $events."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest_asyncio
from pydantic import SecretStr

from schemas import keys
from schemas.transition import TransitionState
from tests.integration.conftest import RunningStack, bearer
from tests.integration.fhir_source import FhirSource, fhir_source
from workers.http_server import create_app
from workers.runtime.services import Services
from workers.runtime.settings import Settings

SOURCE_TOKEN = "Bearer source-secret"
FHIR = {"Content-Type": "application/fhir+json"}


@dataclass
class Subscribed:
    http: httpx.AsyncClient
    source: FhirSource
    services: Services
    headers: dict[str, str]

    async def notify(self, bundle: dict[str, Any], source: str = "ehr") -> httpx.Response:
        return await self.http.post(
            f"/fhir/subscriptions/{source}", content=json.dumps(bundle), headers=self.headers
        )

    def transition(self, facility: str, visit: str) -> str:
        secret = self.services.settings.key_secret.get_secret_value()
        return keys.transition_id(keys.encounter_key(secret, facility, visit))

    async def started(self, tid: str) -> TransitionState:
        handle = self.services.client.get_workflow_handle(keys.workflow_id(tid))
        return await handle.query("get_state", result_type=TransitionState)


@pytest_asyncio.fixture
async def subscribed(stack: RunningStack, settings: Settings) -> AsyncIterator[Subscribed]:
    """The API with CAREBRIDGE_FHIR_SOURCES naming the local FHIR server as `ehr`."""
    async with fhir_source() as source:
        sources = {"ehr": {"base_url": source.base_url, "authorization": SOURCE_TOKEN}}
        configured = settings.model_copy(update={"fhir_sources": SecretStr(json.dumps(sources))})
        services = Services.build(configured, stack.services.pool, stack.services.client)
        feed = await bearer(stack.services.pool, "ehr.subscription", "integration")
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url="http://cb") as http:
            yield Subscribed(http, source, services, {**FHIR, **feed})


def outcome_text(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/fhir+json")
    text: str = response.json()["issue"][0]["diagnostics"]
    return text


def visit(subscribed: Subscribed, number: int) -> tuple[str, str]:
    """A discharge on the source as event `number`; its facility and visit number."""
    facility, visit_number = f"SUB{uuid.uuid4().hex[:6].upper()}", f"V-EV{number}"
    encounter = subscribed.source.add_visit(datetime.now(UTC), facility, visit_number, "MRN-S")
    subscribed.source.events[number] = encounter
    return facility, visit_number


async def test_handshake_and_heartbeat_are_accepted_and_fetch_nothing(
    subscribed: Subscribed,
) -> None:
    for kind in ("handshake", "heartbeat"):
        answer = await subscribed.notify(subscribed.source.notification("Subscription/s1", kind, 0))
        assert answer.status_code == 200, answer.text
        assert outcome_text(answer) == f"{kind} accepted."
    assert subscribed.source.requests == []


async def test_an_id_only_event_is_fetched_with_the_source_credentials_and_starts_the_transition(
    subscribed: Subscribed,
) -> None:
    facility, visit_number = visit(subscribed, 1)
    note = subscribed.source.notification("Subscription/s2", "event-notification", 1, [1])
    answer = await subscribed.notify(note)

    assert answer.status_code == 200, answer.text
    assert outcome_text(answer) == "event-notification accepted; events 1: 200."
    tid = subscribed.transition(facility, visit_number)
    assert (await subscribed.started(tid)).protocol_id == "discharge-home"
    paths = [path for path, _, _ in subscribed.source.requests]
    assert paths[0].startswith("/fhir/Encounter/") and "/fhir/Condition" in paths
    assert {auth for _, _, auth in subscribed.source.requests} == {SOURCE_TOKEN}
    # The same notification again: the same message, nothing new started.
    again = await subscribed.notify(note)
    assert again.status_code == 200
    rows = await subscribed.services.pool.fetch(
        "SELECT status FROM adt_inbox WHERE transition_id = $1", tid
    )
    assert [r["status"] for r in rows] == ["processed"]


async def test_a_full_resource_event_needs_no_fetch_of_its_encounter(
    subscribed: Subscribed,
) -> None:
    facility, visit_number = visit(subscribed, 1)
    note = subscribed.source.notification(
        "Subscription/s3", "event-notification", 1, [1], full=True
    )
    answer = await subscribed.notify(note)

    assert answer.status_code == 200, answer.text
    assert await subscribed.started(subscribed.transition(facility, visit_number))
    fetched = [path for path, _, _ in subscribed.source.requests]
    assert not any(p.startswith(("/fhir/Encounter/", "/fhir/Patient/")) for p in fetched)


async def test_a_gap_in_event_numbers_is_caught_up_with_events(subscribed: Subscribed) -> None:
    visits = [visit(subscribed, n) for n in (1, 2, 3)]
    first = subscribed.source.notification("Subscription/s4", "event-notification", 1, [1])
    assert (await subscribed.notify(first)).status_code == 200
    # Event 2 never arrived; the notification of event 3 says 3 events happened.
    third = subscribed.source.notification("Subscription/s4", "event-notification", 3, [3])
    answer = await subscribed.notify(third)

    assert answer.status_code == 200, answer.text
    assert outcome_text(answer).endswith("caught up with $events: 2.")
    asked = [query for path, query, _ in subscribed.source.requests if path.endswith("/$events")]
    assert asked == ["eventsSinceNumber=2&eventsUntilNumber=2"]
    for facility, visit_number in visits:
        assert await subscribed.started(subscribed.transition(facility, visit_number))


async def test_an_unconfigured_source_and_a_non_notification_are_refused(
    subscribed: Subscribed,
) -> None:
    note = subscribed.source.notification("Subscription/s5", "heartbeat", 0)
    unknown = await subscribed.notify(note, source="nobody")
    assert unknown.status_code == 404 and "no FHIR source nobody" in outcome_text(unknown)
    wrong = await subscribed.notify({"resourceType": "Bundle", "type": "message"})
    assert wrong.status_code == 400 and "history Bundle" in outcome_text(wrong)
