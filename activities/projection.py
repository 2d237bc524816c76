"""Writes a transition's state to the Postgres projection that lists and reports read."""

from __future__ import annotations

import asyncpg
from temporalio import activity

from schemas.transition import ProjectionRecord
from store import projection


class ProjectionActivities:
    """Activities that hold the database pool (injected by the worker)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="record_transition")
    async def record_transition(self, record: ProjectionRecord) -> bool:
        """Upsert the row; an older version never overwrites a newer one (retries, reorders)."""
        return await projection.upsert(self._pool, record)
