"""Escalation notifications: each level reached is recorded in the `notifications` outbox,
named by its channel (worklist, email, page, ...), for the delivery adapters to send."""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity

from schemas.transition import EscalationNotice

log = structlog.get_logger(__name__)


class NotificationActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="notify")
    async def notify(self, notice: EscalationNotice) -> bool:
        """Record the escalation once (retries and replays do not duplicate it)."""
        result = await self._pool.execute(
            """
            INSERT INTO notifications
                (transition_id, step_id, level, role, channel, due_at, scheduled_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (transition_id, step_id, level, due_at) DO NOTHING
            """,
            notice.transition_id,
            notice.step_id,
            notice.level,
            notice.role,
            notice.channel,
            notice.due_at,
            notice.scheduled_at,
        )
        created = result.endswith(" 1")
        log.info(
            "escalation.recorded",
            transition_id=notice.transition_id,
            step_id=notice.step_id,
            level=notice.level,
            channel=notice.channel,
            new=created,
        )
        return created
