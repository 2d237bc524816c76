"""The supervisor's view of a care team (the practice's, store/care_teams.py; else the
facility): each care manager's open transitions (overdue and due today first) and today's
calls, the ones due and the ones made, from the projection."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from schemas.worklist import CareManagerLoad

MAX_ROWS = 1000  # open transitions shown (and counted) for one team

_ROWS = """
SELECT t.transition_id, t.facility, COALESCE(ct.team, t.facility) AS team, t.protocol_id,
    t.risk_tier, t.lace, t.discharged_at, t.current_step, t.next_due_at, t.overdue_steps,
    t.escalation_level, t.owner,
    (SELECT count(*) FROM jsonb_array_elements(t.steps) AS s
      WHERE (s ->> 'is_call')::boolean IS TRUE AND s ->> 'status' = 'open'
        AND (s ->> 'due_at')::timestamptz < $1) AS calls_due_today,
    -- every open step, not only the earliest: one overdue step does not hide one due today
    EXISTS (SELECT 1 FROM jsonb_array_elements(t.steps) AS s
      WHERE s ->> 'status' = 'open' AND (s ->> 'due_at')::timestamptz >= $4
        AND (s ->> 'due_at')::timestamptz < $1) AS has_step_due_today
FROM transitions AS t LEFT JOIN care_teams AS ct ON ct.transition_id = t.transition_id
WHERE t.status = 'active' AND ($2::text IS NULL OR COALESCE(ct.team, t.facility) = $2)
ORDER BY t.owner NULLS FIRST, cardinality(t.overdue_steps) > 0 DESC,
    t.next_due_at < $1 DESC NULLS LAST, t.escalation_level DESC, t.next_due_at ASC NULLS LAST
LIMIT $3
"""

# Calls made today, by whoever made them: a recorded call outcome or a bare attempt.
_CALLS_MADE = """
SELECT e.actor, count(*) AS calls
FROM transition_events AS e JOIN transitions AS t USING (transition_id)
LEFT JOIN care_teams AS ct ON ct.transition_id = t.transition_id
WHERE e.kind IN ('call', 'attempt') AND e.at >= $1 AND e.at < $2
  AND ($3::text IS NULL OR COALESCE(ct.team, t.facility) = $3) AND e.actor IS NOT NULL
GROUP BY e.actor
"""


async def overview(
    pool: asyncpg.Pool, zone: ZoneInfo, team: str | None = None, now: datetime | None = None
) -> list[CareManagerLoad]:
    """One entry per owner (None first: the transitions nobody owns yet), then each care
    manager who made calls today (the day of `now`, default the current time) without
    owning an open transition."""
    today = (now or datetime.now(zone)).astimezone(zone).date()
    start = datetime.combine(today, time(0), tzinfo=zone)
    end = start + timedelta(days=1)
    rows = await pool.fetch(_ROWS, end, team, MAX_ROWS, start)
    made = {
        row["actor"]: int(row["calls"]) for row in await pool.fetch(_CALLS_MADE, start, end, team)
    }
    loads: dict[str | None, CareManagerLoad] = {}
    for found in rows:
        row = dict(found)
        owner = row["owner"]
        load = loads.get(owner) or CareManagerLoad(owner=owner, calls_made_today=made.get(owner, 0))
        loads[owner] = load
        load.open += 1
        load.overdue += bool(row["overdue_steps"])
        load.due_today += bool(row["has_step_due_today"])
        load.calls_due_today += int(row["calls_due_today"])
        load.rows.append(row)
    for actor, calls in sorted(made.items()):
        if actor not in loads:
            loads[actor] = CareManagerLoad(owner=actor, calls_made_today=calls)
    return list(loads.values())
