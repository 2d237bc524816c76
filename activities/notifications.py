"""Escalation notifications: each level reached is recorded once in the `notifications`
outbox (the in-app worklist channel) and delivered through the transport its channel maps to
(e-mail, signed webhook), with an idempotency key per escalation."""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity

from activities.channels import Channels, Message
from schemas.site import NotificationConfig, Transport
from schemas.transition import EscalationNotice

log = structlog.get_logger(__name__)


class NotificationActivities:
    def __init__(
        self, pool: asyncpg.Pool, channels: Channels, config: NotificationConfig, base_url: str
    ) -> None:
        self._pool = pool
        self._channels = channels
        self._config = config
        self._base_url = base_url.rstrip("/")

    @activity.defn(name="notify")
    async def notify(self, notice: EscalationNotice) -> bool:
        """Record the escalation once, then deliver it; retries never duplicate either."""
        row = await self._pool.fetchrow(
            """
            INSERT INTO notifications
                (transition_id, step_id, level, role, channel, due_at, scheduled_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (transition_id, step_id, level, due_at)
                DO UPDATE SET role = EXCLUDED.role
            RETURNING id, delivered_at
            """,
            notice.transition_id,
            notice.step_id,
            notice.level,
            notice.role,
            notice.channel,
            notice.due_at,
            notice.scheduled_at,
        )
        assert row is not None
        if row["delivered_at"] is not None:
            return True
        transport = self._config.channels.get(notice.channel, Transport.WORKLIST)
        key = f"{notice.transition_id}:{notice.step_id}:{notice.level}:{notice.due_at.isoformat()}"
        link = f"{self._base_url}/ui/transitions/{notice.transition_id}"
        if notice.missed_before_arrival:
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
                f"{notice.level} to {notice.role}.\n{link}\n"
            )
        kind = "arrived_late" if notice.missed_before_arrival else "escalation"
        message = Message(
            subject=subject,
            text=text,
            payload={"type": kind, **notice.model_dump(mode="json"), "link": link},
            idempotency_key=key,
            recipients=self._config.recipients.get(notice.role, ()),
        )
        delivered = await self._channels.deliver(transport, message)
        if delivered:
            await self._pool.execute(
                "UPDATE notifications SET delivered_at = now() WHERE id = $1", row["id"]
            )
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
