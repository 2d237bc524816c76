"""The notifications outbox as operators see it: what was recorded and never went out."""

from __future__ import annotations

from typing import Any

import asyncpg

UNDELIVERED = "delivered_at IS NULL AND channel <> 'worklist'"


async def undelivered(pool: asyncpg.Pool, limit: int = 100) -> list[dict[str, Any]]:
    """E-mails and pages recorded but not delivered (refused, failed past their retries, or
    their transport not configured), oldest first: ids, steps, levels and times only."""
    rows = await pool.fetch(
        f"""
        SELECT id, transition_id, step_id, level, role, channel, due_at, scheduled_at, created_at
        FROM notifications WHERE {UNDELIVERED}
        ORDER BY created_at, id
        LIMIT $1
        """,
        limit,
    )
    return [dict(row) for row in rows]


async def count_undelivered(pool: asyncpg.Pool) -> int:
    found: int = await pool.fetchval(f"SELECT count(*) FROM notifications WHERE {UNDELIVERED}")
    return found
