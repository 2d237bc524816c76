"""The times a simulated run left in PostgreSQL: for every timestamptz column the engine
writes, its earliest and latest value. Each stamp (when carebridge received, decided, wrote
or delivered something) must fall inside the simulated period (from the first simulated day
to the server's time when the run ended): one outside it was made with the wall clock
instead of the simulated time (schemas/clock.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

import asyncpg

# Written in real time by design: when the schema was migrated (before the run), and the
# security tables about real people (sessions, login codes, API tokens, who looked), which
# a simulation does not write.
WALL_CLOCK_TABLES = frozenset(
    {"schema_migrations", "web_sessions", "login_codes", "api_tokens", "audit_log"}
)

# Not stamps: the times the messages carry (a discharge, an admission, a document, which a
# replayed feed may date before its first message) and deadlines.
EVENT_TIMES = frozenset(
    {
        "transitions.discharged_at",
        "transitions.readmitted_at",
        "transitions.next_due_at",
        "encounters.at",
        "patients.as_of",
        "pending_visit_events.occurred_at",
        "notifications.due_at",
        "notifications.scheduled_at",
        "trc_evidence.at",
    }
)

_COLUMNS = """
SELECT table_name, column_name FROM information_schema.columns
WHERE table_schema = current_schema() AND data_type = 'timestamp with time zone'
ORDER BY table_name, column_name
"""


@dataclass(frozen=True)
class Stamps:
    began: datetime  # the first simulated day
    ended: datetime  # the server's time when the run ended
    ranges: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    """"table.column": its earliest and latest value (columns with no value left out)."""

    def period(self, zone: tzinfo) -> str:
        """The simulated days the run covered, as its report says (the site's dates)."""
        return f"{self.began.astimezone(zone):%Y-%m-%d} to {self.ended.astimezone(zone):%Y-%m-%d}"

    def outside(self) -> list[str]:
        """Each stamp column with a value outside the simulated period, as a sentence."""
        return [
            f"{column} has times from {low.isoformat()} to {high.isoformat()}, outside the "
            f"simulated period ({self.began.isoformat()} to {self.ended.isoformat()})"
            for column, (low, high) in sorted(self.ranges.items())
            if column not in EVENT_TIMES and (low < self.began or high > self.ended)
        ]


async def read_stamps(pool: asyncpg.Pool, began: datetime, ended: datetime) -> Stamps:
    ranges: dict[str, tuple[datetime, datetime]] = {}
    for column in await pool.fetch(_COLUMNS):
        table, name = column["table_name"], column["column_name"]
        if table in WALL_CLOCK_TABLES:
            continue
        # Names from the catalogue, quoted: not input.
        row = await pool.fetchrow(
            f'SELECT min("{name}") AS low, max("{name}") AS high FROM "{table}"'
        )
        if row is not None and row["low"] is not None:
            ranges[f"{table}.{name}"] = (row["low"], row["high"])
    return Stamps(began=began, ended=ended, ranges=ranges)
