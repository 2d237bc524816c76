"""Which transitions a FHIR search serves (CarePlan, Task), a page at a time, from the
projection: by patient key (after merges), by owner (the transition's, or a step's
assignee), by transition; newest discharge first."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

_PAGE = """
WITH keyed AS (
    SELECT t.transition_id, t.discharged_at, t.owner, t.assignees,
           COALESCE(d.patient_key, (SELECT e.patient_key FROM encounters e
                                    WHERE e.transition_id = t.transition_id
                                    ORDER BY (e.kind = 'discharge') DESC LIMIT 1)) AS patient_key
    FROM transitions t
    LEFT JOIN encounter_details d ON d.transition_id = t.transition_id
    WHERE ($3::text IS NULL OR t.transition_id = $3)
)
SELECT transition_id, patient_key FROM keyed
WHERE ($1::text IS NULL OR patient_key = $1)
  AND ($2::text IS NULL OR owner = $2 OR $2 = ANY(assignees))
ORDER BY discharged_at DESC, transition_id
LIMIT $4 OFFSET $5
"""


@dataclass(frozen=True)
class Found:
    transition_id: str
    patient_key: str | None


async def transitions(
    pool: asyncpg.Pool,
    *,
    patient_key: str | None = None,
    owner: str | None = None,
    transition_id: str | None = None,
    limit: int,
    offset: int = 0,
) -> list[Found]:
    rows = await pool.fetch(_PAGE, patient_key, owner, transition_id, limit, offset)
    return [Found(r["transition_id"], r["patient_key"]) for r in rows]
