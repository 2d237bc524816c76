"""Queries on the transition projection and its timeline."""

from __future__ import annotations

from typing import Any

import asyncpg

from schemas.transition import ProjectionRecord

_UPSERT = """
INSERT INTO transitions AS t (transition_id, encounter_key, facility, protocol_id,
    protocol_version, status, discharged_at, risk_tier, lace, current_step, next_due_at,
    overdue_steps, escalation_level, outcome, updated_at, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, now(), $15)
ON CONFLICT (transition_id) DO UPDATE SET
    status = EXCLUDED.status,
    current_step = EXCLUDED.current_step,
    next_due_at = EXCLUDED.next_due_at,
    overdue_steps = EXCLUDED.overdue_steps,
    escalation_level = EXCLUDED.escalation_level,
    outcome = EXCLUDED.outcome,
    updated_at = now(),
    version = EXCLUDED.version
WHERE t.version < EXCLUDED.version
"""

_EVENTS = """
INSERT INTO transition_events (transition_id, seq, at, kind, step_id, actor, detail)
SELECT $1, * FROM unnest($2::integer[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
                         $7::text[])
ON CONFLICT (transition_id, seq) DO NOTHING
"""


async def upsert(pool: asyncpg.Pool, record: ProjectionRecord) -> bool:
    """Write the row unless a newer version is there, and append the timeline events (both
    idempotent, in one transaction); True when the row was written."""
    async with pool.acquire() as conn, conn.transaction():
        result = await conn.execute(
            _UPSERT,
            record.transition_id,
            record.encounter_key,
            record.facility,
            record.protocol_id,
            record.protocol_version,
            record.status.value,
            record.discharged_at,
            record.risk_tier.value,
            record.lace,
            record.current_step,
            record.next_due_at,
            list(record.overdue_steps),
            record.escalation_level,
            record.outcome.model_dump_json() if record.outcome else None,
            record.version,
        )
        if record.events:
            events = record.events
            await conn.execute(
                _EVENTS,
                record.transition_id,
                [e.seq for e in events],
                [e.at for e in events],
                [e.kind for e in events],
                [e.step_id for e in events],
                [e.actor for e in events],
                [e.detail for e in events],
            )
    return bool(result.endswith(" 1"))


async def list_transitions(
    pool: asyncpg.Pool, *, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Most urgent first: open work by next due time, then the rest by discharge."""
    rows = await pool.fetch(
        """
        SELECT transition_id, facility, protocol_id, protocol_version, status, discharged_at,
               risk_tier, lace, current_step, next_due_at, overdue_steps, escalation_level,
               updated_at, version
        FROM transitions
        WHERE ($1::text IS NULL OR status = $1)
        ORDER BY next_due_at ASC NULLS LAST, discharged_at DESC
        LIMIT $2
        """,
        status,
        limit,
    )
    return [dict(row) for row in rows]


async def timeline(pool: asyncpg.Pool, transition_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT seq, at, kind, step_id, actor, detail FROM transition_events "
        "WHERE transition_id = $1 ORDER BY seq",
        transition_id,
    )
    return [dict(row) for row in rows]
