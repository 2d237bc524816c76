"""The ADT inbox over HTTP (the operators' message browser): list, one message raw and
parsed with what it caused, and reprocessing a stored message after a fix.

A message's raw bytes are PHI: opened (store/inbox.py) only for the roles that may see them
(MESSAGE_READERS: operators and supervisors), each read audited like every /messages call."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request

from ingest.browser import describe
from store import inbox
from workers.api.auth import MESSAGE_READERS, Role, require
from workers.api.common import services

MessageId = Annotated[int, Path(ge=1, le=2**63 - 1, description="inbox id")]

router = APIRouter()


@router.get("/messages", dependencies=[Depends(require(*MESSAGE_READERS))])
async def list_messages(
    request: Request,
    status: str | None = None,
    type: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The ADT inbox, newest first (operators' message browser)."""
    return await inbox.list_messages(
        services(request).pool,
        status=status,
        message_type=type,
        since=since,
        limit=min(max(limit, 1), 500),
    )


@router.get("/messages/{message_id}", dependencies=[Depends(require(*MESSAGE_READERS))])
async def get_message(request: Request, message_id: MessageId) -> dict[str, Any]:
    """One message: raw, parsed, and what it caused (or when retention removed the bytes)."""
    svc = services(request)
    row = await inbox.get_message(svc.pool, svc.field_cipher, message_id)
    if row is None:
        raise HTTPException(404, f"no message {message_id}")
    return describe(row, svc.library.site)


@router.post("/messages/{message_id}/reprocess", dependencies=[Depends(require(Role.OPERATOR))])
async def reprocess_message(request: Request, message_id: MessageId) -> dict[str, Any]:
    """Run a stored message again after a fix; the new row links to the original."""
    try:
        result = await services(request).intake.reprocess(message_id)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from exc
    except inbox.RawUnavailable as exc:  # 410: removed by retention; 409: does not open
        raise HTTPException(410 if exc.removed else 409, str(exc)) from exc
    return {
        "inbox_id": result.inbox_id,
        "reprocessed_from": message_id,
        "ack_code": result.code.value,
        "status": result.status,
        "transition_id": result.transition_id,
    }
