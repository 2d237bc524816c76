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


# A notification committed after the last read may carry an earlier created_at (its
# activity stamped it, then wrote it): simulated time does not skip while an activity runs,
# so an hour before the last read covers every one.
OVERLAP = timedelta(hours=1)


class RaisedEscalations:
    """Each step's highest escalation so far, read incrementally: each hour's read takes the
    notifications created since the last one (less OVERLAP), not a month's."""

    def __init__(self) -> None:
        self._highest: dict[tuple[str, str], Escalation] = {}
        self._since: datetime | None = None

    async def latest(
        self, pool: asyncpg.Pool, transition_ids: list[str], now: datetime
    ) -> dict[tuple[str, str], Escalation]:
        """By (transition id, step id), among `transition_ids`."""
        rows = await pool.fetch(
            "SELECT transition_id, step_id, level, channel, scheduled_at FROM notifications "
            "WHERE transition_id = ANY($1::text[]) AND ($2::timestamptz IS NULL OR "
            "created_at >= $2)",
            transition_ids,
            self._since - OVERLAP if self._since else None,
        )
        self._since = now
        for row in rows:
            key = (row["transition_id"], row["step_id"])
            raised = Escalation(int(row["level"]), str(row["channel"]), row["scheduled_at"])
            known = self._highest.get(key)
            if known is None or (raised.level, raised.at) > (known.level, known.at):
                self._highest[key] = raised
        return self._highest
