"""A transition's care team (the practice's), decided once when its discharge arrives."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def assign(
    pool: asyncpg.Pool,
    transition_id: str,
    team: str,
    decided_by: str,
    at: datetime | None = None,
) -> None:
    """Idempotent: the first decision stays (a repeated discharge does not move the team).
    `at`: when it was decided (None: the database's now)."""
    await pool.execute(
        "INSERT INTO care_teams (transition_id, team, decided_by, decided_at) "
        "VALUES ($1, $2, $3, coalesce($4::timestamptz, now())) "
        "ON CONFLICT (transition_id) DO NOTHING",
        transition_id,
        team,
        decided_by,
        at,
    )


async def team_of(pool: asyncpg.Pool, transition_id: str) -> str | None:
    """The transition's care team; None when it has no row (its facility is its team)."""
    found = await pool.fetchval(
        "SELECT team FROM care_teams WHERE transition_id = $1", transition_id
    )
    return str(found) if found is not None else None
