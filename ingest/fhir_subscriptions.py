"""carebridge as a REST-hook subscriber (FHIR Subscriptions R5 Backport IG, R4): a source's
notification Bundles (`type = history`, a SubscriptionStatus Parameters first) answered, and
each event's Encounter turned into a Da Vinci notification Bundle that goes through the
FHIR intake like a posted one (ingest/fhir_intake.py): the same inbox, routing and start.

- handshake, heartbeat, query-status and query-event: accepted, nothing to do.
- event-notification: each `notification-event`'s focus Encounter, from the Bundle
  (full-resource) or fetched from the source's FHIR base with its configured credentials
  (id-only), with its subject Patient, its serviceProvider Organization and the Conditions of
  the Encounter. `finished` is a discharge; in-progress, arrived, triaged, onleave an admit.
- gaps: the events the source counted (`events-since-subscription-start`) that carebridge has
  not stored are fetched with `Subscription/{id}/$events` and processed the same way.

An event's message id is `{subscription digest}.{event number}`, so a resent event is the same
message and the stored event numbers say which were seen.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from pydantic import BaseModel, SecretStr, TypeAdapter, ValidationError

from ingest.fhir_intake import SENDER_PREFIX, FhirAnswer, FhirIntake
from ingest.fhir_notifications import EVENT_SYSTEM, FhirRefusal

Json = dict[str, Any]
STATUS_ONLY = frozenset({"handshake", "heartbeat", "query-status", "query-event"})
ADMITTED = frozenset({"in-progress", "arrived", "triaged", "onleave"})
FETCH_SECONDS = 10.0


class FhirSource(BaseModel):
    """A FHIR server carebridge subscribes to (CAREBRIDGE_FHIR_SOURCES)."""

    base_url: str
    authorization: SecretStr | None = None  # the header value sent with every fetch


def sources(raw: str | None) -> dict[str, FhirSource]:
    """CAREBRIDGE_FHIR_SOURCES read; ValueError naming the setting when it is not that JSON."""
    if not raw:
        return {}
    try:
        return TypeAdapter(dict[str, FhirSource]).validate_json(raw)
    except ValidationError as exc:
        raise ValueError(
            f"CAREBRIDGE_FHIR_SOURCES is not valid: {exc.error_count()} errors"
        ) from None


@dataclass(frozen=True)
class Event:
    number: int
    focus: str  # the Encounter's reference as the source wrote it


@dataclass(frozen=True)
class Status:
    subscription: str  # the Subscription's reference, e.g. Subscription/123
    kind: str  # handshake | heartbeat | event-notification | query-status | query-event
    since_start: int | None
    events: tuple[Event, ...]
    bundle: Json = field(repr=False)


def _value(parameter: Json, *names: str) -> Any:
    return next((parameter[n] for n in names if n in parameter), None)


def read_status(raw: bytes) -> Status:
    """A notification Bundle's SubscriptionStatus; FhirRefusal (400) when it is none."""
    try:
        bundle = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FhirRefusal(400, "structure", "the body is not JSON.") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirRefusal(400, "structure", "a notification is a Bundle resource.", "Bundle")
    from fhir.resources.R4B.bundle import Bundle

    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        raise FhirRefusal(
            400, "structure", f"the Bundle is not valid FHIR R4 ({exc.error_count()} errors)."
        ) from None
    entries = bundle.get("entry") or []
    status = entries[0].get("resource", {}) if entries else {}
    if bundle.get("type") != "history" or status.get("resourceType") != "Parameters":
        raise FhirRefusal(
            400,
            "structure",
            "a subscription notification is a history Bundle whose first entry is the "
            "SubscriptionStatus Parameters.",
            "Bundle.entry[0]",
        )
    params = status.get("parameter") or []
    named = {p.get("name"): p for p in params}
    kind = _value(named.get("type", {}), "valueCode")
    subscription = (_value(named.get("subscription", {}), "valueReference") or {}).get("reference")
    if not kind or not subscription:
        raise FhirRefusal(
            400, "required", "the SubscriptionStatus needs its subscription and type.", "Parameters"
        )
    since = _value(
        named.get("events-since-subscription-start", {}), "valueString", "valueInteger64"
    )
    events = []
    for parameter in params:
        if parameter.get("name") != "notification-event":
            continue
        parts = {p.get("name"): p for p in parameter.get("part") or []}
        number = _value(parts.get("event-number", {}), "valueString", "valueInteger64")
        focus = (_value(parts.get("focus", {}), "valueReference") or {}).get("reference", "")
        if number is None or not str(number).isdigit():
            raise FhirRefusal(400, "required", "each notification-event needs its event-number.")
        events.append(Event(int(number), str(focus)))
    return Status(
        subscription=str(subscription),
        kind=str(kind),
        since_start=int(since) if since is not None and str(since).isdigit() else None,
        events=tuple(events),
        bundle=bundle,
    )


@dataclass
class Outcome:
    """What a notification did: each event's answer, and the event numbers caught up."""

    answers: dict[int, FhirAnswer] = field(default_factory=dict)
    caught_up: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # no focus to act on


class Subscriber:
    """Turns one source's notifications into intake calls."""

    def __init__(
        self,
        name: str,
        source: FhirSource,
        intake: FhirIntake,
        pool: asyncpg.Pool,
    ) -> None:
        self._name = name
        self._source = source
        self._intake = intake
        self._pool = pool

    def _digest(self, subscription: str) -> str:
        return hashlib.sha256(f"{self._name}\x1f{subscription}".encode()).hexdigest()[:16]

    @property
    def _endpoint(self) -> str:
        return self._source.base_url

    async def handle(self, status: Status) -> Outcome:
        outcome = Outcome()
        if status.kind in STATUS_ONLY:
            return outcome
        async with self._client() as client:
            resources = _included(status.bundle)
            for event in status.events:
                await self._event(client, status.subscription, event, resources, outcome)
            await self._catch_up(client, status, outcome)
        return outcome

    def _client(self) -> httpx.AsyncClient:
        headers = {"Accept": "application/fhir+json"}
        if self._source.authorization:
            headers["Authorization"] = self._source.authorization.get_secret_value()
        base = self._source.base_url.rstrip("/") + "/"
        return httpx.AsyncClient(base_url=base, headers=headers, timeout=FETCH_SECONDS)

    async def _seen(self, subscription: str) -> set[int]:
        digest = self._digest(subscription)
        rows = await self._pool.fetch(
            "SELECT control_id FROM adt_inbox WHERE sending_application = $1 "
            "AND control_id LIKE $2 AND reprocessed_from IS NULL",
            SENDER_PREFIX + self._endpoint,
            f"{digest}.%",
        )
        numbers = (r["control_id"].rpartition(".")[2] for r in rows)
        return {int(n) for n in numbers if n.isdigit()}

    async def _catch_up(self, client: httpx.AsyncClient, status: Status, outcome: Outcome) -> None:
        """The events the source counted and carebridge never stored, from `$events`."""
        counted = max([status.since_start or 0, *(e.number for e in status.events)])
        missing = sorted(set(range(1, counted + 1)) - await self._seen(status.subscription))
        if not missing:
            return
        response = await client.get(
            f"{_local_of(status.subscription)}/$events",
            params={"eventsSinceNumber": missing[0], "eventsUntilNumber": missing[-1]},
        )
        response.raise_for_status()
        events = read_status(response.content)
        resources = _included(events.bundle)
        for event in events.events:
            if event.number in missing:
                await self._event(client, status.subscription, event, resources, outcome)
                outcome.caught_up.append(event.number)

    async def _event(
        self,
        client: httpx.AsyncClient,
        subscription: str,
        event: Event,
        included: dict[str, Json],
        outcome: Outcome,
    ) -> None:
        if not event.focus:
            outcome.skipped.append(event.number)
            return
        encounter = included.get(event.focus) or await self._fetch(client, event.focus)
        message = await self._message(client, subscription, event, encounter, included)
        raw = json.dumps(message, sort_keys=True, separators=(",", ":")).encode()
        outcome.answers[event.number] = await self._intake.handle(raw)

    async def _fetch(self, client: httpx.AsyncClient, reference: str) -> Json:
        """A resource from the source's FHIR base (an id-only payload's focus and context)."""
        relative = "/".join(reference.rstrip("/").split("/")[-2:])
        response = await client.get(relative)
        response.raise_for_status()
        found: Json = response.json()
        return found

    async def _message(
        self,
        client: httpx.AsyncClient,
        subscription: str,
        event: Event,
        encounter: Json,
        included: dict[str, Json],
    ) -> Json:
        """The Da Vinci notification the event amounts to: its MessageHeader, the Encounter,
        the Patient, the Organization and the Conditions (included or fetched)."""
        status = encounter.get("status")
        kind = "notification-discharge" if status == "finished" else "notification-admit"
        if status != "finished" and status not in ADMITTED:
            kind = f"encounter-{status}"  # refused by the intake: stored, seen, not acted on
        resources = [encounter]
        for reference in (encounter.get("subject"), encounter.get("serviceProvider")):
            target = (reference or {}).get("reference")
            if target:
                resources.append(included.get(target) or await self._fetch(client, target))
        resources += await self._conditions(client, encounter, included)
        header = {
            "resourceType": "MessageHeader",
            "id": f"{self._digest(subscription)}.{event.number}",
            "eventCoding": {"system": EVENT_SYSTEM, "code": kind},
            "source": {"endpoint": self._endpoint},
            "focus": [{"reference": _local(encounter)}],
        }
        provider = (encounter.get("serviceProvider") or {}).get("reference")
        if provider:
            header["sender"] = {"reference": _local_of(provider)}
        entries = [{"fullUrl": f"urn:carebridge:{header['id']}", "resource": header}]
        entries += [
            {"fullUrl": f"{self._endpoint.rstrip('/')}/{_local(r)}", "resource": _localised(r)}
            for r in resources
        ]
        return {"resourceType": "Bundle", "type": "message", "entry": entries}

    async def _conditions(
        self, client: httpx.AsyncClient, encounter: Json, included: dict[str, Json]
    ) -> list[Json]:
        own = _local(encounter)
        bundled = [
            r
            for r in included.values()
            if r.get("resourceType") == "Condition"
            and _local_of((r.get("encounter") or {}).get("reference", "")) == own
        ]
        if bundled:
            return bundled
        response = await client.get("Condition", params={"encounter": own})
        if response.status_code != 200:
            return []  # diagnoses are optional: LACE scores without them
        found = [e.get("resource", {}) for e in response.json().get("entry") or []]
        return [r for r in found if r.get("resourceType") == "Condition"]


def _included(bundle: Json) -> dict[str, Json]:
    """A notification's resources by fullUrl and by `Type/id` (full-resource payloads)."""
    found: dict[str, Json] = {}
    for entry in (bundle.get("entry") or [])[1:]:
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            continue
        if entry.get("fullUrl"):
            found[entry["fullUrl"]] = resource
        if resource.get("id"):
            found[f"{resource['resourceType']}/{resource['id']}"] = resource
    return found


def _local_of(reference: str) -> str:
    """`https://ehr/fhir/Patient/7` as `Patient/7`."""
    return "/".join(reference.rstrip("/").split("/")[-2:])


def _local(resource: Json) -> str:
    return f"{resource.get('resourceType')}/{resource.get('id')}"


def _localised(resource: Json) -> Json:
    """The resource with its references to the others written `Type/id` (resolvable in the
    message Bundle whatever base the source used)."""
    copy = dict(resource)
    for name in ("subject", "serviceProvider", "encounter"):
        if isinstance(copy.get(name), dict) and copy[name].get("reference"):
            copy[name] = {**copy[name], "reference": _local_of(copy[name]["reference"])}
    return copy
