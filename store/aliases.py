"""Patient aliases: a merged-away patient key and the key it was merged into.

A merge (A34, A36, A39, A40, A47) keeps one row per merged-away key, so a message that
arrives later under the old identifier is routed to the surviving patient. Keys are HMACs
(schemas/keys.py), never identifiers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

# How many merges resolution follows (A->B->C ...): a patient is rarely merged more than
# once or twice; the bound only keeps a corrupted table from looping.
MAX_HOPS = 16

_RESOLVE = """
WITH RECURSIVE chain (key, hops, seen) AS (
    SELECT $1::text, 0, ARRAY[$1::text]
    UNION ALL
    SELECT a.surviving_key, c.hops + 1, c.seen || a.surviving_key
    FROM chain c JOIN patient_aliases a ON a.merged_key = c.key
    WHERE c.hops < $2 AND NOT a.surviving_key = ANY (c.seen)
)
SELECT key FROM chain ORDER BY hops DESC LIMIT 1
"""


async def resolve(db: asyncpg.Pool, patient_key: str) -> str:
    """The surviving key of a patient key: itself unless it was merged away (followed
    through later merges of the survivor, at most MAX_HOPS, never round a cycle)."""
    if not patient_key:
        return patient_key
    found = await db.fetchval(_RESOLVE, patient_key, MAX_HOPS)
    return str(found) if found else patient_key


async def record(
    conn: Any,
    *,
    merged_key: str,
    surviving_key: str,
    event_type: str,
    at: datetime | None = None,
) -> None:
    """Keep merged_key -> surviving_key (conn: a connection in the merge's transaction).
    A key that already has an alias keeps it: the first merge of a key stands (HL7 says a
    merged-away identifier is not used again), so repeating a merge changes nothing."""
    await conn.execute(
        """
        INSERT INTO patient_aliases (merged_key, surviving_key, event_type, merged_at)
        VALUES ($1, $2, $3, coalesce($4::timestamptz, now()))
        ON CONFLICT (merged_key) DO NOTHING
        """,
        merged_key,
        surviving_key,
        event_type,
        at,
    )
