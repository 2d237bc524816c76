"""Notifications over HTTP: the e-mails, pages and team digests that did not go out, and
sending one undelivered notification again."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from activities.channels import Channels
from activities.notifications import RedeliveryBusy, redeliver
from schemas.maintenance import Redelivery
from store import notifications
from workers.api.auth import Role, require
from workers.api.common import problem, services

NotificationId = Annotated[int, Path(ge=1, le=2**63 - 1, description="notification id")]

router = APIRouter(dependencies=[Depends(require(Role.OPERATOR))])


@router.get("/notifications/undelivered")
async def undelivered_notifications(request: Request, limit: int = 100) -> list[dict[str, Any]]:
    """E-mails and pages that did not go out (refused, failed past their retries, or not
    configured), oldest first."""
    return await notifications.undelivered(services(request).pool, min(max(limit, 1), 500))


@router.get("/digests/undelivered")
async def undelivered_digests(request: Request) -> list[dict[str, Any]]:
    """The last week's team digests that did not go out, with the reason."""
    return await notifications.undelivered_digests(services(request).pool)


@router.post("/notifications/{notification_id}/redeliver", response_model=Redelivery)
async def redeliver_notification(
    request: Request, notification_id: NotificationId
) -> Redelivery | JSONResponse:
    """Send one undelivered e-mail or page again with its original idempotency key;
    one already delivered is not sent again (a retried request is harmless)."""
    svc = services(request)
    try:
        result = await redeliver(
            svc.pool,
            Channels(svc.settings.channel_settings),
            svc.library.site.notifications,
            svc.settings.public_url,
            notification_id,
        )
    except RedeliveryBusy as exc:
        return problem(409, "Conflict", str(exc))
    if result is None:
        return problem(404, "Not Found", f"no notification {notification_id}")
    return result
