"""Encounter history by opaque patient key: admissions, ED visits and discharges.

Readmission routing asks which discharges of a patient are still in their 30-day window;
LACE asks how many ED visits the patient had in the 6 months before the admission.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg

from store import aliases

ED_LOOKBACK = timedelta(days=182)
ADMISSION = "admission"
ED_VISIT = "ed_visit"
DISCHARGE = "discharge"


async def record(
    pool: asyncpg.Pool,
    *,
    patient_key: str,
    encounter_key: str,
    kind: str,
    facility: str,
    at: datetime,
    transition_id: str | None = None,
) -> None:
    """Idempotent: the same encounter of the same kind is recorded once."""
    await pool.execute(
        """
        INSERT INTO encounters (patient_key, encounter_key, kind, facility, at, transition_id)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (patient_key, encounter_key, kind) DO UPDATE
            SET transition_id = COALESCE(encounters.transition_id, EXCLUDED.transition_id)
        """,
        patient_key,
        encounter_key,
        kind,
        facility,
        at,
        transition_id,
    )


async def record_discharge(
    pool: asyncpg.Pool,
    *,
    patient_key: str,
    encounter_key: str,
    facility: str,
    at: datetime,
    transition_id: str,
    team: str,
    decided_by: str,
    decided_at: datetime | None = None,
) -> None:
    """`record` of a discharge and store/care_teams.py `assign` of its transition's team
    (decided `decided_at`; None: the database's now), in one statement (one round trip of
    the intake's per-message cost); idempotent as each is."""
    await pool.execute(
        """
        WITH team AS (
            INSERT INTO care_teams (transition_id, team, decided_by, decided_at)
            VALUES ($5, $6, $7, coalesce($9::timestamptz, now()))
            ON CONFLICT (transition_id) DO NOTHING
        )
        INSERT INTO encounters (patient_key, encounter_key, kind, facility, at, transition_id)
        VALUES ($1, $2, $8, $3, $4, $5)
        ON CONFLICT (patient_key, encounter_key, kind) DO UPDATE
            SET transition_id = COALESCE(encounters.transition_id, EXCLUDED.transition_id)
        """,
        patient_key,
        encounter_key,
        facility,
        at,
        transition_id,
        team,
        decided_by,
        DISCHARGE,
        decided_at,
    )


async def count_ed_visits_before(
    pool: asyncpg.Pool, *, patient_key: str, before: datetime, excluding_encounter: str
) -> int:
    """ED visits in the 6 months before `before`, not counting the index encounter."""
    count = await pool.fetchval(
        """
        SELECT count(*) FROM encounters
        WHERE patient_key = $1 AND kind = 'ed_visit' AND encounter_key <> $2
          AND at >= $3 AND at < $4
        """,
        patient_key,
        excluding_encounter,
        before - ED_LOOKBACK,
        before,
    )
    return int(count or 0)


async def transitions_in_window(
    pool: asyncpg.Pool,
    *,
    patient_key: str,
    at: datetime,
    excluding_encounter: str,
    window_days: int = 30,
) -> list[str]:
    """Transitions of discharges of this patient in the `window_days` before `at`."""
    rows = await pool.fetch(
        """
        SELECT DISTINCT transition_id FROM encounters
        WHERE patient_key = $1 AND kind = 'discharge' AND transition_id IS NOT NULL
          AND encounter_key <> $2 AND at <= $3 AND at > $3 - make_interval(days => $4)
        """,
        patient_key,
        excluding_encounter,
        at,
        window_days,
    )
    return [row["transition_id"] for row in rows]


async def transitions_of_patient(pool: asyncpg.Pool, patient_key: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT DISTINCT transition_id FROM encounters "
        "WHERE patient_key = $1 AND transition_id IS NOT NULL",
        patient_key,
    )
    return [row["transition_id"] for row in rows]


async def merge_patient(
    pool: asyncpg.Pool,
    *,
    source: str,
    target: str,
    event_type: str = "A40",
    at: datetime | None = None,
) -> int:
    """A merge: move the source patient's encounters to the surviving key and keep the
    source key as an alias of it (store/aliases.py), merged `at` (None: the database's
    now), in one transaction; repeatable (a second time moves nothing and keeps the first
    alias). Returns the encounters moved."""
    async with pool.acquire() as conn, conn.transaction():
        moved = await conn.execute(
            """
            INSERT INTO encounters (patient_key, encounter_key, kind, facility, at, transition_id)
            SELECT $2, encounter_key, kind, facility, at, transition_id
            FROM encounters WHERE patient_key = $1
            ON CONFLICT (patient_key, encounter_key, kind) DO NOTHING
            """,
            source,
            target,
        )
        await conn.execute("DELETE FROM encounters WHERE patient_key = $1", source)
        await aliases.record(
            conn, merged_key=source, surviving_key=target, event_type=event_type, at=at
        )
    return int(moved.split()[-1])


async def discharges_of_patient(
    pool: asyncpg.Pool, patient_key: str, *, before: datetime, window_days: int = 30
) -> list[str]:
    """Transitions of this patient's discharges in the `window_days` up to `before`, newest
    first, leaving out those the projection shows closed (what a scheduling message or a
    clinic visit of the patient may be about)."""
    rows = await pool.fetch(
        """
        SELECT e.transition_id FROM encounters e
        LEFT JOIN transitions t ON t.transition_id = e.transition_id
        WHERE e.patient_key = $1 AND e.kind = 'discharge' AND e.transition_id IS NOT NULL
          AND e.at <= $2 AND e.at > $2 - make_interval(days => $3)
          AND (t.status IS NULL OR t.status = 'active')
        ORDER BY e.at DESC
        """,
        patient_key,
        before,
        window_days,
    )
    return [row["transition_id"] for row in rows]
