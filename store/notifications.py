"""The notifications outbox and the digests as operators see them: what was recorded and
never went out, and why."""

from __future__ import annotations

from typing import Any

import asyncpg

UNDELIVERED = "delivered_at IS NULL AND channel <> 'worklist'"
RECENT_DIGESTS = "delivered_at IS NULL AND day >= current_date - 7"


async def undelivered(pool: asyncpg.Pool, limit: int = 100) -> list[dict[str, Any]]:
    """E-mails and pages recorded but not delivered (refused, failed past their retries, or
    their transport not configured), oldest first: ids, steps, levels, times and the reason
    only."""
    rows = await pool.fetch(
        f"""
        SELECT id, transition_id, step_id, level, role, channel, transport, failure, due_at,
               scheduled_at, created_at
        FROM notifications WHERE {UNDELIVERED}
        ORDER BY created_at, id
        LIMIT $1
        """,
        limit,
    )
    return [dict(row) for row in rows]


async def undelivered_digests(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    """The last week's team digests that did not go out, newest first."""
    rows = await pool.fetch(
        f"SELECT team, day, failure, updated_at FROM digest_deliveries WHERE {RECENT_DIGESTS} "
        "ORDER BY day DESC, team"
    )
    return [dict(row) for row in rows]


async def count_undelivered(pool: asyncpg.Pool) -> int:
    found: int = await pool.fetchval(
        f"SELECT (SELECT count(*) FROM notifications WHERE {UNDELIVERED}) "
        f"+ (SELECT count(*) FROM digest_deliveries WHERE {RECENT_DIGESTS})"
    )
    return found
