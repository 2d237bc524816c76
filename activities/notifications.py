"""Escalation notifications: each level reached is recorded once in the `notifications`
outbox (the in-app worklist channel) and delivered through the transport its channel maps to
(e-mail, signed webhook), with an idempotency key per escalation. A delivery that fails keeps
its reason on the row; an operator redelivers it (`redeliver`) with the same key."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import structlog
from asyncpg.pool import PoolConnectionProxy
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.channels import Channels, Message
from schemas.call import RED_FLAG_ROLE
from schemas.clock import Clock, wall_clock
from schemas.maintenance import Redelivery
from schemas.site import NotificationConfig, Shift, SiteConfig, Transport
from schemas.transition import EscalationNotice

log = structlog.get_logger(__name__)
NOT_CONFIGURED = "transport not configured (or no recipients for the role)"


class RedeliveryBusy(Exception):
    """Another redelivery of the same notification holds its row."""


class NotificationActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        channels: Channels,
        site: SiteConfig,
        base_url: str,
        clock: Clock = wall_clock,
    ) -> None:
        """`clock` stamps the outbox rows (created, delivered): simulated time in a simulation."""
        self._pool = pool
        self._clock = clock
        self._channels = channels
        self._site = site
        self._config = site.notifications
        self._base_url = base_url.rstrip("/")

    async def _on_duty(self, notice: EscalationNotice) -> Shift | None:
        """Who is on duty for the notice's role when it fired (site.yaml on_call), in the
        facility's zone, for the transition's care team; None when the site does not say."""
        if notice.missed_before_arrival or not self._config.on_call.get(notice.role):
            return None
        row = await self._pool.fetchrow(
            "SELECT (SELECT facility FROM transitions WHERE transition_id = $1) AS facility, "
            "(SELECT team FROM care_teams WHERE transition_id = $1) AS team",
            notice.transition_id,
        )
        facility = row["facility"] if row is not None else None
        team = (row["team"] if row is not None else None) or facility
        zone = self._site.zone_for(facility) if facility else self._site.calendar_zone()
        return self._config.on_duty(notice.role, notice.scheduled_at, zone, team)

    @activity.defn(name="notify")
    async def notify(self, notice: EscalationNotice) -> bool:
        """Record the escalation once, then deliver it; retries never duplicate either."""
        transport = notice.transport or self._config.channels.get(
            notice.channel, Transport.WORKLIST
        )
        on_duty = await self._on_duty(notice)
        row = await self._pool.fetchrow(
            """
            INSERT INTO notifications (transition_id, step_id, level, role, channel, due_at,
                                       scheduled_at, transport, on_duty, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (transition_id, step_id, level, due_at)
                DO UPDATE SET role = EXCLUDED.role,
                              on_duty = COALESCE(notifications.on_duty, EXCLUDED.on_duty)
            RETURNING id, delivered_at, on_duty
            """,
            notice.transition_id,
            notice.step_id,
            notice.level,
            notice.role,
            notice.channel,
            notice.due_at,
            notice.scheduled_at,
            transport.value,
            on_duty.name if on_duty else None,
            await self._clock(),
        )
        assert row is not None
        if row["delivered_at"] is not None:
            return True
        on_duty = shift_named(self._config, notice.role, row["on_duty"])  # the first try's
        message = notice_message(notice, self._config, self._base_url, on_duty)
        try:
            delivered = await self._channels.deliver(transport, message)
        except Exception as exc:
            with contextlib.suppress(Exception):  # the delivery's error is the one to raise
                await record_delivery(self._pool, row["id"], False, describe_failure(exc))
            raise
        await record_delivery(self._pool, row["id"], delivered, None, at=await self._clock())
        if not notice.missed_before_arrival:  # the arrived-late notice is not an escalation
            activity.metric_meter().create_counter(
                "carebridge_escalations", "Escalation notifications recorded, by level and channel"
            ).add(1, {"level": str(notice.level), "channel": notice.channel})
        log.info(
            "escalation.recorded",
            transition_id=notice.transition_id,
            step_id=notice.step_id,
            level=notice.level,
            transport=transport.value,
            delivered=delivered,
        )
        return delivered


def shift_named(config: NotificationConfig, role: str, name: str | None) -> Shift | None:
    """The on-call shift a notification row names (its e-mail, for a redelivery); a name no
    longer in site.yaml is still named, without an address."""
    if name is None:
        return None
    found = next((s for s in config.on_call.get(role, ()) if s.name == name), None)
    return found or Shift(name=name)


def notice_message(
    notice: EscalationNotice,
    config: NotificationConfig,
    base_url: str,
    on_duty: Shift | None = None,
) -> Message:
    """The e-mail or webhook body of a notice: ids, steps, levels, times and a link, and who
    is on duty for the role when the site says (also sent it, with an address)."""
    due = notice.due_at.astimezone(UTC).isoformat()  # the same key from a row read back
    key = f"{notice.transition_id}:{notice.step_id}:{notice.level}:{due}"
    link = f"{base_url.rstrip('/')}/ui/transitions/{notice.transition_id}"
    duty = f" (on duty: {on_duty.name})" if on_duty else ""
    if notice.red_flag:  # which symptoms stays on the transition page: no PHI in a notice
        subject = f"[carebridge] red flag on a call: transition {notice.transition_id}"
        text = (
            f"A call on step {notice.step_id} of transition {notice.transition_id} at "
            f"{notice.due_at.isoformat()} reported red-flag symptoms.\nA clinician{duty} "
            f"should call the patient now.\n{link}\n"
        )
    elif notice.missed_before_arrival:
        missed = ", ".join(notice.missed_before_arrival)
        subject = f"[carebridge] transition {notice.transition_id} arrived late"
        text = (
            f"The discharge of transition {notice.transition_id} arrived "
            f"{notice.scheduled_at.isoformat()}, after the deadline of: {missed}.\n{link}\n"
        )
    else:
        subject = f"[carebridge] {notice.step_id} overdue: level {notice.level}"
        text = (
            f"Step {notice.step_id} of transition {notice.transition_id} was due "
            f"{notice.due_at.isoformat()} and is not done.\nEscalation level "
            f"{notice.level} to {notice.role}{duty}.\n{link}\n"
        )
    kind = (
        "red_flag"
        if notice.red_flag
        else "arrived_late"
        if notice.missed_before_arrival
        else "escalation"
    )
    recipients = config.recipients.get(notice.role, ())
    if on_duty and on_duty.email and on_duty.email not in recipients:
        recipients = (*recipients, on_duty.email)
    return Message(
        subject=subject,
        text=text,
        payload={
            "type": kind,
            **notice.model_dump(mode="json"),
            "on_duty": on_duty.name if on_duty else None,
            "link": link,
        },
        idempotency_key=key,
        recipients=recipients,
    )


def describe_failure(exc: BaseException) -> str:
    """What an operator reads in the undelivered list: no patient data reaches here."""
    if isinstance(exc, ApplicationError):
        return exc.message
    if isinstance(exc, httpx.HTTPStatusError):
        return f"webhook answered {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}"[:300]


async def record_delivery(
    db: asyncpg.Pool | PoolConnectionProxy[Any],
    notification_id: int,
    delivered: bool,
    failure: str | None,
    *,
    at: datetime | None = None,
) -> None:
    """`at`: when it was delivered (None: the database's now, as for an operator's
    redelivery, which happens in real time)."""
    await db.execute(
        "UPDATE notifications SET failure = $3, "
        "delivered_at = CASE WHEN $2 THEN coalesce($4::timestamptz, now()) END "
        "WHERE id = $1 AND delivered_at IS NULL",
        notification_id,
        delivered,
        None if delivered else failure or NOT_CONFIGURED,
        at,
    )


async def redeliver(
    pool: asyncpg.Pool,
    channels: Channels,
    config: NotificationConfig,
    base_url: str,
    notification_id: int,
) -> Redelivery | None:
    """An operator's retry of one undelivered notification, with its original idempotency
    key (a receiver that did get it the first time drops the copy). Idempotent: a delivered
    one is not sent again, and two retries at once cannot both send (the row is locked;
    the second gets RedeliveryBusy). None: no such notification."""
    async with pool.acquire() as connection, connection.transaction():
        try:
            row = await connection.fetchrow(
                "SELECT * FROM notifications WHERE id = $1 FOR UPDATE NOWAIT", notification_id
            )
        except asyncpg.LockNotAvailableError:
            raise RedeliveryBusy(f"notification {notification_id} is being redelivered") from None
        if row is None:
            return None
        if row["delivered_at"] is not None:
            return Redelivery(id=notification_id, delivered=True, already_delivered=True)
        notice = notice_from_row(row)
        transport = Transport(row["transport"]) if row["transport"] else None
        transport = transport or config.channels.get(notice.channel, Transport.WORKLIST)
        on_duty = shift_named(config, notice.role, row["on_duty"])
        failure: str | None = None
        try:
            message = notice_message(notice, config, base_url, on_duty)
            delivered = await channels.deliver(transport, message)
        except Exception as exc:
            delivered, failure = False, describe_failure(exc)
        await record_delivery(connection, notification_id, delivered, failure)
    log.info("notification.redelivered", notification_id=notification_id, delivered=delivered)
    return Redelivery(
        id=notification_id,
        delivered=delivered,
        failure=None if delivered else failure or NOT_CONFIGURED,
    )


def notice_from_row(row: Any) -> EscalationNotice:
    return EscalationNotice(
        transition_id=row["transition_id"],
        step_id=row["step_id"],
        level=row["level"],
        role=row["role"],
        channel=row["channel"],
        due_at=row["due_at"],
        scheduled_at=row["scheduled_at"],
        red_flag=row["level"] == 0 and row["role"] == RED_FLAG_ROLE,  # as the call sent it
    )
