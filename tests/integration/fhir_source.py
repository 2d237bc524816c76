"""A small local FHIR server for the subscription tests: it serves the resources it is given
(read by Type/id, Conditions searched by encounter) and a Subscription's `$events`, over real
HTTP on a free port, and records every request it answered (path, query, Authorization)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ingest.fhir_examples import discharge_bundle
from tests.helpers import find_free_port
from workers.http_server import EmbeddedUvicorn

Json = dict[str, Any]
TOPIC = "http://hl7.org/fhir/uv/subscriptions-backport/SubscriptionTopic/r4b-encounter-complete"


@dataclass
class FhirSource:
    base_url: str
    resources: dict[str, Json] = field(default_factory=dict)  # by Type/id
    events: dict[int, str] = field(default_factory=dict)  # event number -> focus Type/id
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # path, query, auth

    def add_visit(self, now: datetime, facility: str, visit: str, mrn: str) -> str:
        """The resources of one discharge (the example Bundle's, each under Type/id with its
        references written Type/id); the Encounter's Type/id."""
        bundle = discharge_bundle(now, facility=facility, visit=visit, mrn=mrn)
        by_urn = {e["fullUrl"]: e["resource"] for e in bundle["entry"][1:]}
        local = {urn: f"{r['resourceType']}/{r['id']}" for urn, r in by_urn.items()}

        def relink(value: Any) -> Any:
            if isinstance(value, dict):
                return {
                    k: local.get(v, v) if k == "reference" else relink(v) for k, v in value.items()
                }
            if isinstance(value, list):
                return [relink(v) for v in value]
            return value

        for urn, resource in by_urn.items():
            self.resources[local[urn]] = relink(resource)
        return next(local[u] for u, r in by_urn.items() if r["resourceType"] == "Encounter")

    def status(self, subscription: str, kind: str, since: int, events: list[int]) -> Json:
        """A SubscriptionStatus Parameters of `kind` with id-only `events`."""
        parameters: list[Json] = [
            {
                "name": "subscription",
                "valueReference": {"reference": f"{self.base_url}/{subscription}"},
            },
            {"name": "topic", "valueCanonical": TOPIC},
            {"name": "status", "valueCode": "active"},
            {"name": "type", "valueCode": kind},
            {"name": "events-since-subscription-start", "valueString": str(since)},
        ]
        for number in events:
            parameters.append(
                {
                    "name": "notification-event",
                    "part": [
                        {"name": "event-number", "valueString": str(number)},
                        {
                            "name": "focus",
                            "valueReference": {
                                "reference": f"{self.base_url}/{self.events[number]}"
                            },
                        },
                    ],
                }
            )
        return {"resourceType": "Parameters", "id": str(uuid.uuid4()), "parameter": parameters}

    def notification(
        self, subscription: str, kind: str, since: int, events: list[int] = (), full: bool = False
    ) -> Json:
        """A notification Bundle; `full`: the events' Encounters and their Patients included."""
        entries: list[Json] = [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": self.status(subscription, kind, since, list(events)),
            }
        ]
        if full:
            for number in events:
                encounter = self.resources[self.events[number]]
                patient = encounter["subject"]["reference"]
                for key in (self.events[number], patient):
                    entries.append(
                        {"fullUrl": f"{self.base_url}/{key}", "resource": self.resources[key]}
                    )
        return {
            "resourceType": "Bundle",
            "type": "history",
            "timestamp": "2026-01-01T00:00:00Z",
            "entry": entries,
        }


def _app(source: FhirSource) -> FastAPI:
    app = FastAPI()

    def seen(request: Request) -> None:
        auth = request.headers.get("authorization", "")
        source.requests.append((request.url.path, request.url.query, auth))

    @app.get("/fhir/Condition")
    async def conditions(request: Request, encounter: str) -> JSONResponse:
        seen(request)
        found = [
            {"resource": r}
            for key, r in source.resources.items()
            if key.startswith("Condition/") and r.get("encounter", {}).get("reference") == encounter
        ]
        return JSONResponse({"resourceType": "Bundle", "type": "searchset", "entry": found})

    @app.get("/fhir/Subscription/{subscription}/$events")
    async def events(
        request: Request, subscription: str, eventsSinceNumber: int, eventsUntilNumber: int
    ) -> JSONResponse:
        seen(request)
        wanted = [n for n in sorted(source.events) if eventsSinceNumber <= n <= eventsUntilNumber]
        body = source.notification(
            f"Subscription/{subscription}", "query-event", max(source.events), wanted
        )
        return JSONResponse(body)

    @app.get("/fhir/{kind}/{resource_id}")
    async def read(request: Request, kind: str, resource_id: str) -> JSONResponse:
        seen(request)
        found = source.resources.get(f"{kind}/{resource_id}")
        if found is None:
            return JSONResponse({"resourceType": "OperationOutcome", "issue": []}, status_code=404)
        return JSONResponse(found)

    return app


@asynccontextmanager
async def fhir_source() -> AsyncIterator[FhirSource]:
    port = find_free_port()
    source = FhirSource(base_url=f"http://127.0.0.1:{port}/fhir")
    server = EmbeddedUvicorn(
        uvicorn.Config(_app(source), host="127.0.0.1", port=port, log_config=None)
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    try:
        yield source
    finally:
        server.should_exit = True
        await serving
