"""Figures for the dashboard: the last 30 days of discharges, contacts, visits, escalations
and readmissions, from the projection and the notifications outbox.

A percentage is over the transitions whose window has closed (the contact deadline, day 7,
day 14), with that denominator beside it: a transition still inside its window is not a
failure, and a day without such transitions has no percentage (None), not 0%. Cancelled
discharges are left out, as in the TCM report."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg

from schemas.protocol_library import ProtocolLibrary
from store import reports


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


async def last_30_days(
    pool: asyncpg.Pool,
    library: ProtocolLibrary,
    today: date | None = None,
    now: datetime | None = None,
    facility: str | None = None,
) -> dict[str, Any]:
    """The figures of the 30 days ending `today` (of one facility's discharges, or all)."""
    zone = library.site.calendar_zone()
    at = now or datetime.now(UTC)
    end = today or at.astimezone(zone).date()
    start = end - timedelta(days=29)
    days = [(start + timedelta(days=n)).isoformat() for n in range(30)]
    tcm, _, _ = await reports.judged(pool, library, "tcm", start, end, facility, at)
    readmissions = (await reports.report(pool, library, "readmissions", start, end, facility))[
        "rows"
    ]
    per_day = Counter(row["discharged_on"] for row in tcm)
    applicable = [r for r in tcm if r["tcm_applicable"]]
    closed = [r for r in applicable if r["_contact_closed"]]
    contacted = Counter(r["discharged_on"] for r in closed if r["contact_within_2_business_days"])
    closed_per_day = Counter(r["discharged_on"] for r in closed)
    within_7 = [r for r in applicable if r["_visit_7_closed"]]
    within_14 = [r for r in applicable if r["_visit_14_closed"]]

    def visited_by(rows: list[dict[str, Any]], day: int) -> int:
        return sum(r["visit_day"] is not None and r["visit_day"] <= day for r in rows)

    levels = await pool.fetch(
        "SELECT n.level, count(*) AS n FROM notifications n WHERE n.created_at >= $1 "
        "AND n.level > 0 AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM transitions t "
        "WHERE t.transition_id = n.transition_id AND t.facility = $2)) "
        "GROUP BY n.level ORDER BY n.level",  # level 0: an 'arrived late' notice
        datetime.combine(start, datetime.min.time(), tzinfo=zone),
        facility,
    )
    return {
        "from": start,
        "to": end,
        "labels": [d[5:] for d in days],
        "discharges": [per_day[d] for d in days],
        "contacted_pct": [_pct(contacted[d], closed_per_day[d]) for d in days],
        "contact_windows_closed": [closed_per_day[d] for d in days],
        "in_progress": sum(r["tcm_state"] == "in progress" for r in applicable),
        "visits_within_7_pct": _pct(visited_by(within_7, 7), len(within_7)),
        "visits_within_7_of": len(within_7),
        "visits_within_14_pct": _pct(visited_by(within_14, 14), len(within_14)),
        "visits_within_14_of": len(within_14),
        "escalations_by_level": {row["level"]: row["n"] for row in levels},
        "readmitted": sum(r["readmitted"] for r in readmissions),
        "discharged": len(readmissions),
    }
