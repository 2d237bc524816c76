"""The FHIR door in: POST /fhir/$process-message, a Da Vinci notification Bundle (R4, as
application/fhir+json) through the HL7 v2 intake's inbox and routing (ingest/fhir_intake.py),
answered with an OperationOutcome."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ingest.fhir_intake import FhirIntake
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
