"""Queries on the transition projection."""

from __future__ import annotations

from typing import Any

import asyncpg

from schemas.transition import ProjectionRecord

_UPSERT = """
INSERT INTO transitions AS t (transition_id, encounter_key, facility, protocol_id,
    protocol_version, status, discharged_at, current_step, next_due_at, overdue_steps,
    updated_at, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), $11)
ON CONFLICT (transition_id) DO UPDATE SET
    status = EXCLUDED.status,
    current_step = EXCLUDED.current_step,
    next_due_at = EXCLUDED.next_due_at,
    overdue_steps = EXCLUDED.overdue_steps,
    updated_at = now(),
    version = EXCLUDED.version
WHERE t.version < EXCLUDED.version
"""


async def upsert(pool: asyncpg.Pool, record: ProjectionRecord) -> bool:
    """Write the record unless a newer version is already there; True when written."""
    result = await pool.execute(
        _UPSERT,
        record.transition_id,
        record.encounter_key,
        record.facility,
        record.protocol_id,
        record.protocol_version,
        record.status.value,
        record.discharged_at,
        record.current_step,
        record.next_due_at,
        list(record.overdue_steps),
        record.version,
    )
    return bool(result.endswith(" 1"))


async def list_transitions(
    pool: asyncpg.Pool, *, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Most urgent first: open work by next due time, then the rest by discharge."""
    rows = await pool.fetch(
        """
        SELECT transition_id, facility, protocol_id, protocol_version, status, discharged_at,
               current_step, next_due_at, overdue_steps, updated_at, version
        FROM transitions
        WHERE ($1::text IS NULL OR status = $1)
        ORDER BY next_due_at ASC NULLS LAST, discharged_at DESC
        LIMIT $2
        """,
        status,
        limit,
    )
    return [dict(row) for row in rows]


async def get_transition(pool: asyncpg.Pool, transition_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM transitions WHERE transition_id = $1", transition_id)
    return dict(row) if row else None
