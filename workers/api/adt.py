"""ADT intake over HTTP: POST /adt, raw ER7 in (one message or one batch, as over MLLP), the
HL7 ACK out. The same intake as the MLLP listener (ingest/intake.py)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ingest import batch
from workers.api.auth import Role, require
from workers.api.common import problem, services

ER7_MEDIA_TYPE = "x-application/hl7-v2+er7"
ER7_CONTENT_TYPES = frozenset(
    {ER7_MEDIA_TYPE, "application/hl7-v2", "application/hl7-v2+er7", "text/plain"}
)

router = APIRouter()


@router.post("/adt", response_model=None, dependencies=[Depends(require(Role.INTEGRATION))])
async def post_adt(request: Request) -> Response:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ER7_CONTENT_TYPES:
        return problem(
            415,
            "Unsupported Media Type",
            f"send raw ER7 with Content-Type: {ER7_MEDIA_TYPE} (got {content_type or 'none'})",
        )
    body = await request.body()
    limit = services(request).settings.max_message_bytes
    if len(body) > limit:
        return problem(413, "Payload Too Large", f"ADT messages are limited to {limit} bytes")
    # One message or one batch, as over MLLP (two messages without a batch: AR).
    answer = await batch.answer(services(request).intake, body)
    if not answer.replies:  # enhanced mode with MSH-15/16 = NE: nothing to acknowledge
        return Response(status_code=204)
    # Enhanced mode may ask for a commit and an application ACK; HTTP has one body: the last.
    return Response(content=answer.replies[-1], media_type=ER7_MEDIA_TYPE)
