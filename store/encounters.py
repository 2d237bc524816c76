"""Encounter history by opaque patient key (for LACE 'E': ED visits in the prior 6 months)."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

ED_LOOKBACK = timedelta(days=182)


async def record_ed_visit(
    pool: asyncpg.Pool, *, patient_key: str, encounter_key: str, facility: str, at: datetime
) -> None:
    await pool.execute(
        """
        INSERT INTO ed_visits (patient_key, encounter_key, facility, visited_at)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT (patient_key, encounter_key) DO NOTHING
        """,
        patient_key,
        encounter_key,
        facility,
        at,
    )


async def count_ed_visits_before(
    pool: asyncpg.Pool, *, patient_key: str, before: datetime, excluding_encounter: str
) -> int:
    """ED visits in the 6 months before `before`, not counting the index encounter."""
    count = await pool.fetchval(
        """
        SELECT count(*) FROM ed_visits
        WHERE patient_key = $1 AND encounter_key <> $2
          AND visited_at >= $3 AND visited_at < $4
        """,
        patient_key,
        excluding_encounter,
        before - ED_LOOKBACK,
        before,
    )
    return int(count or 0)
