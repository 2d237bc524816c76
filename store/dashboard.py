"""Figures for the dashboard: the last 30 days of discharges, contacts, visits, escalations
and readmissions, from the projection and the notifications outbox."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from schemas.protocol_library import ProtocolLibrary
from store import reports


def _pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


async def last_30_days(
    pool: asyncpg.Pool, library: ProtocolLibrary, today: date | None = None
) -> dict[str, Any]:
    zone = library.site.calendar_zone()
    end = today or datetime.now(zone).date()
    start = end - timedelta(days=29)
    days = [start + timedelta(days=n) for n in range(30)]
    tcm = (await reports.report(pool, library, "tcm", start, end))["rows"]
    readmissions = (await reports.report(pool, library, "readmissions", start, end))["rows"]
    per_day = Counter(row["discharged_on"] for row in tcm)
    applicable = [r for r in tcm if r["tcm_code"] != "not applicable"]
    contacted = Counter(
        r["discharged_on"] for r in applicable if r["contact_within_2_business_days"]
    )
    eligible_per_day = Counter(r["discharged_on"] for r in applicable)
    visits = [r["visit_day"] for r in applicable if r["visit_day"] is not None]
    levels = await pool.fetch(
        "SELECT level, count(*) AS n FROM notifications WHERE created_at >= $1 "
        "AND level > 0 GROUP BY level ORDER BY level",  # level 0: an 'arrived late' notice
        datetime.combine(start, datetime.min.time(), tzinfo=zone),
    )
    return {
        "from": start,
        "to": end,
        "labels": [d.strftime("%m-%d") for d in days],
        "discharges": [per_day[d.isoformat()] for d in days],
        "contacted_pct": [
            _pct(contacted[d.isoformat()], eligible_per_day[d.isoformat()]) for d in days
        ],
        "visits_within_7_pct": _pct(sum(v <= 7 for v in visits), len(applicable)),
        "visits_within_14_pct": _pct(sum(v <= 14 for v in visits), len(applicable)),
        "escalations_by_level": {row["level"]: row["n"] for row in levels},
        "readmitted": sum(r["readmitted"] for r in readmissions),
        "discharged": len(readmissions),
    }
