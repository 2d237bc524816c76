"""The FHIR door in: POST /fhir/$process-message, a Da Vinci notification Bundle (R4, as
application/fhir+json) through the HL7 v2 intake's inbox and routing (ingest/fhir_intake.py),
and POST /fhir/subscriptions/{source}, a subscribed source's REST-hook notifications
(ingest/fhir_subscriptions.py); both answered with an OperationOutcome."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ingest import fhir_subscriptions
from ingest.fhir_intake import FhirIntake
from ingest.fhir_notifications import FhirRefusal
from ingest.fhir_outcome import FHIR_JSON, outcome
from workers.api.auth import Role, require
from workers.api.common import services

FHIR_CONTENT_TYPES = frozenset({FHIR_JSON, "application/json", "application/json+fhir"})

router = APIRouter(tags=["fhir"])


def fhir_response(status: int, body: dict[str, object]) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


@router.post(
    "/fhir/$process-message",
    response_model=None,
    dependencies=[Depends(require(Role.INTEGRATION))],
)
async def process_message(request: Request) -> JSONResponse:
    """A Da Vinci admit, discharge or transfer notification: 200 with an informational
    OperationOutcome once it is stored and acted on; 4xx saying what is wrong; 503: resend."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in FHIR_CONTENT_TYPES:
        text = f"send the Bundle as {FHIR_JSON} (got {content_type or 'no Content-Type'})."
        return fhir_response(415, outcome("error", "not-supported", text))
    body = await request.body()
    svc = services(request)
    limit = svc.settings.max_message_bytes
    if len(body) > limit:
        text = f"notification Bundles are limited to {limit} bytes."
        return fhir_response(413, outcome("error", "too-costly", text))
    intake = FhirIntake(svc.intake, svc.pool, svc.field_cipher, svc.settings.ack_timeout_seconds)
    answer = await intake.handle(body)
    return fhir_response(answer.status, answer.body)


@router.post(
    "/fhir/subscriptions/{source}",
    response_model=None,
    dependencies=[Depends(require(Role.INTEGRATION))],
)
async def subscription_notification(request: Request, source: str) -> JSONResponse:
    """A REST-hook notification from a FHIR source carebridge subscribes to (R5 Backport):
    handshakes and heartbeats accepted; each event's Encounter through the notification
    intake (fetched from the source when id-only); missed events caught up with $events.
    200 once every event is stored and acted on; 503 when one could not be (resend)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in FHIR_CONTENT_TYPES:
        text = f"send the notification as {FHIR_JSON} (got {content_type or 'no Content-Type'})."
        return fhir_response(415, outcome("error", "not-supported", text))
    svc = services(request)
    raw = svc.settings.fhir_sources.get_secret_value() if svc.settings.fhir_sources else None
    configured = fhir_subscriptions.sources(raw).get(source)
    if configured is None:
        text = f"no FHIR source {source} is configured here (CAREBRIDGE_FHIR_SOURCES)."
        return fhir_response(404, outcome("error", "not-found", text))
    body = await request.body()
    if len(body) > svc.settings.max_message_bytes:
        text = f"notification Bundles are limited to {svc.settings.max_message_bytes} bytes."
        return fhir_response(413, outcome("error", "too-costly", text))
    intake = FhirIntake(svc.intake, svc.pool, svc.field_cipher, svc.settings.ack_timeout_seconds)
    subscriber = fhir_subscriptions.Subscriber(source, configured, intake, svc.pool)
    try:
        status = fhir_subscriptions.read_status(body)
        done = await subscriber.handle(status)
    except FhirRefusal as refusal:
        body_ = outcome("error", refusal.code, refusal.text, expression=refusal.expression)
        return fhir_response(refusal.status, body_)
    except httpx.HTTPError as exc:
        text = f"the source could not be read ({type(exc).__name__}); send the notification again."
        return fhir_response(503, outcome("error", "transient", text))
    statuses = {number: answer.status for number, answer in sorted(done.answers.items())}
    if any(code >= 500 for code in statuses.values()):
        text = "an event could not be stored or acted on now; send the notification again."
        return fhir_response(503, outcome("error", "transient", text))
    summary = f"{status.kind} accepted"
    if statuses:
        summary += "; events " + ", ".join(f"{n}: {code}" for n, code in statuses.items())
    if done.caught_up:
        summary += "; caught up with $events: " + ", ".join(str(n) for n in done.caught_up)
    return fhir_response(200, outcome("information", "informational", summary + "."))
