"""What every HTTP route uses: the services dependency (`Svc`), the Idempotency-Key header and
RFC 9457 problem bodies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse

from schemas.sentences import field_errors
from workers.runtime.services import Services
from workers.runtime.temporal import IDEMPOTENCY_KEY_PATTERN

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="a retried request with the same key returns the first result and acts once",
    ),
]


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


Svc = Annotated[Services, Depends(services)]


def describe_errors(errors: Sequence[Any]) -> str:
    """pydantic / FastAPI validation errors as sentences: `field.path: message.`"""
    return field_errors(errors)


def problem(status: int, title: str, detail: str) -> JSONResponse:
    """An RFC 9457 problem body, for non-HL7 clients."""
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )
