"""Writes a transition's state to the Postgres projection that lists and reports read."""

from __future__ import annotations

import time
from datetime import timedelta

import asyncpg
from temporalio import activity

from schemas.clock import Clock, wall_clock
from schemas.transition import ProjectionRecord
from store import projection


class ProjectionActivities:
    """Activities that hold the database pool and the clock (injected by the worker)."""

    def __init__(self, pool: asyncpg.Pool, clock: Clock = wall_clock) -> None:
        self._pool = pool
        self._clock = clock

    @activity.defn(name="record_transition")
    async def record_transition(self, record: ProjectionRecord) -> bool:
        """Upsert the row; an older version never overwrites a newer one (retries, reorders)."""
        # One read of the clock (a simulation's is a round trip), the write timed apart.
        now, began = await self._clock(), time.monotonic()
        written = await projection.upsert(self._pool, record, at=now)
        visible = now + timedelta(seconds=time.monotonic() - began)
        if record.events:
            # Projection lag: from the newest event in the workflow to its row being visible.
            newest = max(event.at for event in record.events)
            activity.metric_meter().create_histogram_float(
                "carebridge_projection_lag",
                "Seconds from a workflow event to the projection row that shows it",
                "s",
            ).record(max(0.0, (visible - newest).total_seconds()))
        return written
