"""A page of the worklist with who its patients are: the projection's rows (store/projection.py),
narrowed to the patients a registry search finds when the query asks (`q`: name, MRN, birth
date or phone, through the blind indexes), each with its patient summary (store/people.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg

from schemas.site import SiteConfig
from schemas.worklist import TransitionQuery
from store import people, projection, registry
from store.encryption import BlindIndex, FieldCipher

SEARCH_LIMIT = 200  # patients a search may find; their transitions are then paged


async def page(
    pool: asyncpg.Pool,
    cipher: FieldCipher,
    index: BlindIndex,
    query: TransitionQuery,
    site: SiteConfig,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """The rows and how many match in all; each row's `patient_key` and `patient` (None
    when the registry does not know the patient). PHI: the caller audits each patient shown."""
    now = now or datetime.now(UTC)
    found: list[str] | None = None
    if query.q:
        found = await registry.search(pool, index, query.q, limit=SEARCH_LIMIT)
        if not found:
            return [], 0
    rows, total = await projection.search(pool, query, site, now, patients=found)
    keys = await people.patient_keys(pool, [row["transition_id"] for row in rows])
    today = {
        row["transition_id"]: now.astimezone(site.zone_for(row["facility"])).date() for row in rows
    }
    shown = await people.of_transitions(pool, cipher, keys, today)
    for row in rows:
        row["patient_key"] = keys.get(row["transition_id"])
        row["patient"] = shown.get(row["transition_id"])
    return rows, total
