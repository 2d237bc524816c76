"""Visit events kept until their discharge arrives (out-of-order delivery).

An A02/A07/A08/A12/A13 for a visit whose transition has not started yet is kept by encounter
key, pointing at its inbox row (no patient data is copied: the sealed raw message is read
again from adt_inbox, store/inbox.read_raw, when the discharge's transition starts). Settling
one records what became of it both here and on its inbox row (status and decision), in one
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg


class Outcome(StrEnum):
    DELIVERED = "delivered"  # signalled to the transition the discharge started
    OLDER = "older"  # happened before the discharge: not applied
    EXPIRED = "expired"  # kept longer than the site's window: not applied
    CLOSED = "closed"  # the transition had closed already (an earlier kept A13, say)
    UNREADABLE = "unreadable"  # its stored message no longer maps (site settings changed)


@dataclass(frozen=True)
class PendingEvent:
    inbox_id: int
    event_type: str
    occurred_at: datetime
    received_at: datetime


async def keep(
    pool: asyncpg.Pool,
    *,
    inbox_id: int,
    encounter_key: str,
    event_type: str,
    occurred_at: datetime,
    received_at: datetime,
) -> None:
    """Idempotent: a message routed again (retried after a failure) is kept once."""
    await pool.execute(
        """
        INSERT INTO pending_visit_events
            (inbox_id, encounter_key, event_type, occurred_at, received_at)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (inbox_id) DO NOTHING
        """,
        inbox_id,
        encounter_key,
        event_type,
        occurred_at,
        received_at,
    )


async def waiting(pool: asyncpg.Pool, encounter_key: str) -> list[PendingEvent]:
    """The encounter's events not settled yet, in event-time order (then arrival order)."""
    rows = await pool.fetch(
        """
        SELECT inbox_id, event_type, occurred_at, received_at FROM pending_visit_events
        WHERE encounter_key = $1 AND settled_at IS NULL
        ORDER BY occurred_at, inbox_id
        """,
        encounter_key,
    )
    return [PendingEvent(**dict(row)) for row in rows]


async def settle(
    pool: asyncpg.Pool,
    inbox_id: int,
    *,
    outcome: Outcome,
    decision: str,
    transition_id: str | None,
    at: datetime | None = None,
) -> None:
    """Record the outcome here and on the inbox row (processed when delivered, else
    ignored), so the message browser shows what finally became of the message; settled
    `at` (None: the database's now)."""
    status = "processed" if outcome == Outcome.DELIVERED else "ignored"
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            UPDATE pending_visit_events
            SET settled_at = coalesce($4::timestamptz, now()), outcome = $2, transition_id = $3
            WHERE inbox_id = $1
            """,
            inbox_id,
            outcome.value,
            transition_id,
            at,
        )
        await conn.execute(
            """
            UPDATE adt_inbox SET status = $2, decision = $3,
                transition_id = coalesce($4, transition_id)
            WHERE id = $1
            """,
            inbox_id,
            status,
            decision,
            transition_id,
        )
