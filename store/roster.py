"""The attribution roster by opaque patient key: idempotent upserts, lookups, counts.

Read only when an A03 arrives, so changing the roster never touches a running transition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class RosterRecord:
    """One roster row as stored: the patient appears only as the HMAC patient key."""

    patient_key: str
    assigning_authority: str
    practice: str
    pcp_id: str = ""
    program: str = ""


@dataclass(frozen=True)
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class RosterSummary:
    total: int
    by_practice: dict[str, int]
    last_imported_at: datetime | None
    last_source_file: str | None


async def upsert(
    pool: asyncpg.Pool, records: list[RosterRecord], *, source_file: str
) -> UpsertCounts:
    """Insert new keys, update changed rows, leave identical rows (and their import time) alone:
    importing the same file twice changes nothing."""
    records = list({r.patient_key: r for r in records}.values())  # one row per key
    if not records:
        return UpsertCounts()
    rows = await pool.fetch(
        """
        INSERT INTO roster AS r
            (patient_key, assigning_authority, practice, pcp_id, program, source_file)
        SELECT key, authority, practice, NULLIF(pcp, ''), NULLIF(program, ''), $6
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
            AS input (key, authority, practice, pcp, program)
        ON CONFLICT (patient_key) DO UPDATE
            SET assigning_authority = EXCLUDED.assigning_authority,
                practice = EXCLUDED.practice,
                pcp_id = EXCLUDED.pcp_id,
                program = EXCLUDED.program,
                source_file = EXCLUDED.source_file,
                imported_at = now()
            WHERE (r.assigning_authority, r.practice, r.pcp_id, r.program)
                IS DISTINCT FROM
                (EXCLUDED.assigning_authority, EXCLUDED.practice, EXCLUDED.pcp_id,
                 EXCLUDED.program)
        RETURNING (xmax = 0) AS inserted
        """,
        [r.patient_key for r in records],
        [r.assigning_authority for r in records],
        [r.practice for r in records],
        [r.pcp_id for r in records],
        [r.program for r in records],
        source_file,
    )
    inserted = sum(1 for row in rows if row["inserted"])
    return UpsertCounts(
        inserted=inserted, updated=len(rows) - inserted, unchanged=len(records) - len(rows)
    )


async def lookup(pool: asyncpg.Pool, patient_key: str) -> RosterRecord | None:
    row = await pool.fetchrow(
        "SELECT patient_key, assigning_authority, practice, pcp_id, program "
        "FROM roster WHERE patient_key = $1",
        patient_key,
    )
    if row is None:
        return None
    return RosterRecord(
        patient_key=row["patient_key"],
        assigning_authority=row["assigning_authority"],
        practice=row["practice"],
        pcp_id=row["pcp_id"] or "",
        program=row["program"] or "",
    )


async def count(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM roster") or 0)


async def summary(pool: asyncpg.Pool) -> RosterSummary:
    """Rows per practice and the latest import (what `carebridge roster status` shows)."""
    practices = await pool.fetch(
        "SELECT practice, count(*) AS n FROM roster GROUP BY practice ORDER BY practice"
    )
    latest = await pool.fetchrow(
        "SELECT imported_at, source_file FROM roster ORDER BY imported_at DESC LIMIT 1"
    )
    return RosterSummary(
        total=sum(int(row["n"]) for row in practices),
        by_practice={row["practice"]: int(row["n"]) for row in practices},
        last_imported_at=latest["imported_at"] if latest else None,
        last_source_file=latest["source_file"] if latest else None,
    )
