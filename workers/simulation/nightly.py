"""The nightly consistency sweep's repair in a simulated run: production's schedule runs
SweepWorkflow at site.yaml's sweep_time, whose rows of ended transitions are repaired from
Temporal (activities/projection_repair.py). The time-skipping server has no Schedules and
cannot list workflows, so the run calls the same repair itself, at the first sweep time after
the last period ended, for the transitions it started whose row still reads active."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
from temporalio.client import Client

from activities.projection_repair import repair_ended
from schemas.site import SiteConfig


def next_sweep(site: SiteConfig, after: datetime) -> datetime:
    zone = site.calendar_zone()
    local = after.astimezone(zone)
    at = datetime.combine(local.date(), site.notifications.sweep_time, tzinfo=zone)
    return at if at > local else at + timedelta(days=1)


async def repair(pool: asyncpg.Pool, client: Client, transitions: list[str]) -> list[str]:
    """The transitions whose row the sweep repaired (their last write had given up)."""
    active = [
        r["transition_id"]
        for r in await pool.fetch(
            "SELECT transition_id FROM transitions "
            "WHERE transition_id = ANY($1::text[]) AND status = 'active' ORDER BY transition_id",
            transitions,
        )
    ]
    return await repair_ended(pool, client, active)
