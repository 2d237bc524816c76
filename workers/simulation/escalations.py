"""When the simulated staff see an escalation: the role that works a step sees its latest
escalation `reacts_within_hours` after it was raised (notifications.scheduled_at, the
simulated time), and only then takes it before the rest of its worklist."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg


@dataclass(frozen=True)
class Escalation:
    level: int
    channel: str
    at: datetime  # when the engine raised it (simulated time)

    def seen_by(self, now: datetime, reacts_within_hours: float | None) -> bool:
        return now >= self.at + timedelta(hours=reacts_within_hours or 0)


async def latest(
    pool: asyncpg.Pool, transition_ids: list[str]
) -> dict[tuple[str, str], Escalation]:
    """Each step's highest escalation so far, by (transition id, step id)."""
    rows = await pool.fetch(
        "SELECT DISTINCT ON (transition_id, step_id) transition_id, step_id, level, channel, "
        "scheduled_at FROM notifications WHERE transition_id = ANY($1::text[]) "
        "ORDER BY transition_id, step_id, level DESC, scheduled_at DESC",
        transition_ids,
    )
    return {
        (row["transition_id"], row["step_id"]): Escalation(
            int(row["level"]), str(row["channel"]), row["scheduled_at"]
        )
        for row in rows
    }
