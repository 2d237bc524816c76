"""The API's gauges read from PostgreSQL at scrape time, in a registry of their own: only the
API serves them (the listener's /metrics used to export carebridge_inbox_unsettled 0 beside
them, masking a dead API), and when PostgreSQL does not answer they are left out instead of
going stale. Labels are status, protocol, step and facility codes only: no identifiers."""

from __future__ import annotations

import time

import asyncpg
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from store import notifications

REGISTRY = CollectorRegistry(auto_describe=True)
USUAL_GAP_REFRESH_SECONDS = 600.0  # a week of inter-arrival gaps is not read every scrape

TRANSITIONS = Gauge(
    "carebridge_transitions",
    "Transitions in the projection, by status",
    ["status"],
    registry=REGISTRY,
)
STEPS_OVERDUE = Gauge(
    "carebridge_steps_overdue",
    "Overdue steps of active transitions, by protocol and step",
    ["protocol", "step"],
    registry=REGISTRY,
)
INBOX_UNSETTLED = Gauge(
    "carebridge_inbox_unsettled",
    "ADT messages stored but not answered (received, no ACK yet)",
    registry=REGISTRY,
)
INBOX_OLDEST_UNSETTLED = Gauge(
    "carebridge_inbox_oldest_unsettled_seconds",
    "Age of the oldest ADT message stored but not answered (0 when none)",
    registry=REGISTRY,
)
NOTIFICATIONS_UNDELIVERED = Gauge(
    "carebridge_notifications_undelivered",
    "E-mails and pages recorded in the outbox, and team digests of the last week, that did "
    "not go out",
    registry=REGISTRY,
)
FEED_SILENCE = Gauge(
    "carebridge_feed_silence_seconds",
    "Seconds since the facility's last ADT message (facilities heard from in 30 days)",
    ["facility"],
    registry=REGISTRY,
)
FEED_USUAL_GAP = Gauge(
    "carebridge_feed_usual_gap_seconds",
    "The facility's usual gap between ADT messages: the 95th percentile of the last 7 days'",
    ["facility"],
    registry=REGISTRY,
)

_OVERDUE = """
SELECT protocol_id, step, count(*) AS n
FROM transitions, unnest(overdue_steps) AS step
WHERE status = 'active'
GROUP BY protocol_id, step
"""
_OLDEST_UNSETTLED = """
SELECT coalesce(extract(epoch FROM now() - min(received_at)), 0)
FROM adt_inbox WHERE status = 'received'
"""
_SILENCE = """
SELECT sending_facility AS facility, extract(epoch FROM now() - max(received_at)) AS seconds
FROM adt_inbox
WHERE received_at > now() - interval '30 days' AND sending_facility IS NOT NULL
GROUP BY sending_facility
"""
_USUAL_GAP = """
SELECT facility, percentile_cont(0.95) WITHIN GROUP (ORDER BY gap) AS seconds
FROM (
    SELECT sending_facility AS facility,
           extract(epoch FROM received_at - lag(received_at)
               OVER (PARTITION BY sending_facility ORDER BY received_at)) AS gap
    FROM adt_inbox
    WHERE received_at > now() - interval '7 days' AND sending_facility IS NOT NULL
) AS gaps
WHERE gap IS NOT NULL
GROUP BY facility
"""


class UsualGaps:
    """The facilities' usual gaps, read again at most every USUAL_GAP_REFRESH_SECONDS."""

    def __init__(self) -> None:
        self.read_at = float("-inf")
        self.seconds: dict[str, float] = {}

    async def get(self, pool: asyncpg.Pool) -> dict[str, float]:
        if time.monotonic() - self.read_at >= USUAL_GAP_REFRESH_SECONDS:
            rows = await pool.fetch(_USUAL_GAP)
            self.seconds = {row["facility"]: float(row["seconds"]) for row in rows}
            self.read_at = time.monotonic()
        return self.seconds


USUAL_GAPS = UsualGaps()


async def refresh(pool: asyncpg.Pool) -> None:
    by_status = await pool.fetch("SELECT status, count(*) AS n FROM transitions GROUP BY status")
    overdue = await pool.fetch(_OVERDUE)
    unsettled = await pool.fetchval("SELECT count(*) FROM adt_inbox WHERE status = 'received'")
    oldest = await pool.fetchval(_OLDEST_UNSETTLED)
    silence = await pool.fetch(_SILENCE)
    gaps = await USUAL_GAPS.get(pool)
    undelivered = await notifications.count_undelivered(pool)
    for gauge in (TRANSITIONS, STEPS_OVERDUE, FEED_SILENCE, FEED_USUAL_GAP):
        gauge.clear()
    for row in by_status:
        TRANSITIONS.labels(status=row["status"]).set(row["n"])
    for row in overdue:
        STEPS_OVERDUE.labels(protocol=row["protocol_id"], step=row["step"]).set(row["n"])
    INBOX_UNSETTLED.set(unsettled)
    INBOX_OLDEST_UNSETTLED.set(float(oldest))
    for row in silence:
        FEED_SILENCE.labels(facility=row["facility"]).set(float(row["seconds"]))
    for facility, seconds in gaps.items():
        FEED_USUAL_GAP.labels(facility=facility).set(seconds)
    NOTIFICATIONS_UNDELIVERED.set(undelivered)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
