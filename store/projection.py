"""Queries on the transition projection and its timeline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from schemas.call import Reached
from schemas.site import SiteConfig, Transport
from schemas.social_needs import ReferralOutcome
from schemas.transition import ProjectionRecord, StepStatus, TimelineEvent, UndeliveredNotice
from schemas.worklist import TCM_WORK, TransitionQuery

LIVE = (StepStatus.OPEN, StepStatus.PENDING)

_UPSERT = """
INSERT INTO transitions AS t (transition_id, encounter_key, facility, protocol_id,
    protocol_version, status, discharged_at, risk_tier, lace, current_step, next_due_at,
    overdue_steps, escalation_level, outcome, updated_at, version, steps, assignees,
    readmitted_at, owner)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb,
        coalesce($20::timestamptz, now()), $15, $16::jsonb, $17, $18, $19)
ON CONFLICT (transition_id) DO UPDATE SET
    status = EXCLUDED.status,
    current_step = EXCLUDED.current_step,
    next_due_at = EXCLUDED.next_due_at,
    overdue_steps = EXCLUDED.overdue_steps,
    escalation_level = EXCLUDED.escalation_level,
    outcome = EXCLUDED.outcome,
    steps = EXCLUDED.steps,
    assignees = EXCLUDED.assignees,
    readmitted_at = EXCLUDED.readmitted_at,
    owner = EXCLUDED.owner,
    updated_at = EXCLUDED.updated_at,
    version = EXCLUDED.version
WHERE t.version <= EXCLUDED.version
"""
# `<=`, not `<`: a write of the same version is the same write made again, and the later one
# is the one Temporal kept. A workflow task that fails after its local activity wrote the row
# (the deadlock detector on a CPU-starved worker, a task timeout) runs again and builds the
# row again, with its own workflow.now(): a close's outcome then carries the retry's
# closed_at, which is what the workflow's history and result hold. Refusing it left the
# projection's outcome different from Temporal's at the same version (seen by the simulation's
# invariants, 3 transitions of 2,420 on a loaded machine).

_EVENTS = """
INSERT INTO transition_events (transition_id, seq, at, kind, step_id, actor, detail)
SELECT $1, * FROM unnest($2::integer[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
                         $7::text[])
ON CONFLICT (transition_id, seq) DO NOTHING
"""


# What staff type (a completion's outcome, a cancel reason) may name the patient: it stays in
# the workflow (encrypted in Temporal) and the transition page shows it from there; the
# plain-text projection keeps only the controlled words.
FREE_TEXT_EVENTS = frozenset({"completed", "cancelled"})
CONTROLLED_WORDS = frozenset(
    {
        "done",
        *(o.value for o in ReferralOutcome),
        "reached",  # record_attempt's, and record_call's (schemas/call.py)
        *(f"reached {r.value}" for r in Reached if r != Reached.NOBODY),
    }
)
WITHHELD = "(written by staff: on the transition page)"


def _public(text: str | None) -> str | None:
    return text if text is None or text in CONTROLLED_WORDS else WITHHELD


def _public_events(events: tuple[TimelineEvent, ...]) -> list[TimelineEvent]:
    return [
        e.model_copy(update={"detail": _public(e.detail) or ""})
        if e.kind in FREE_TEXT_EVENTS
        else e
        for e in events
    ]


async def upsert(
    pool: asyncpg.Pool, record: ProjectionRecord, *, at: datetime | None = None
) -> bool:
    """Write the row unless a newer version is there, and append the timeline events (both
    idempotent, in one transaction); True when the row was written. `at`: the row's
    updated_at and an undelivered notice's created time (None: the database's now)."""
    async with pool.acquire() as conn, conn.transaction():
        result = await conn.execute(
            _UPSERT,
            record.transition_id,
            record.encounter_key,
            record.facility,
            record.protocol_id,
            record.protocol_version,
            record.status.value,
            record.discharged_at,
            record.risk_tier.value,
            record.lace,
            record.current_step,
            record.next_due_at,
            list(record.overdue_steps),
            record.escalation_level,
            record.outcome.model_dump_json() if record.outcome else None,
            record.version,
            json.dumps(
                [
                    step.model_dump(mode="json") | {"outcome": _public(step.outcome)}
                    for step in record.steps
                ]
            ),
            sorted({s.assignee for s in record.steps if s.assignee and s.status in LIVE}),
            record.readmitted_at,
            record.owner,
            at,
        )
        if record.events:
            events = _public_events(record.events)
            await conn.execute(
                _EVENTS,
                record.transition_id,
                [e.seq for e in events],
                [e.at for e in events],
                [e.kind for e in events],
                [e.step_id for e in events],
                [e.actor for e in events],
                [e.detail for e in events],
            )
        for undelivered in record.undelivered:
            await conn.execute(_UNDELIVERED, *_undelivered_row(undelivered), at)
    return bool(result.endswith(" 1"))


# A notice whose delivery gave up while PostgreSQL was away reaches the outbox with the row:
# an e-mail or page as undelivered (with the reason), a worklist notice as in place.
_UNDELIVERED = """
INSERT INTO notifications AS n (transition_id, step_id, level, role, channel, due_at,
    scheduled_at, transport, failure, delivered_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
        CASE WHEN $10 THEN coalesce($11::timestamptz, now()) END, coalesce($11, now()))
ON CONFLICT (transition_id, step_id, level, due_at) DO UPDATE
    SET failure = COALESCE(n.failure, EXCLUDED.failure)
    WHERE n.delivered_at IS NULL
"""


def _undelivered_row(undelivered: UndeliveredNotice) -> tuple[Any, ...]:
    notice = undelivered.notice
    in_app = notice.transport == Transport.WORKLIST or (
        notice.transport is None and notice.channel == Transport.WORKLIST.value
    )
    return (
        notice.transition_id,
        notice.step_id,
        notice.level,
        notice.role,
        notice.channel,
        notice.due_at,
        notice.scheduled_at,
        notice.transport.value if notice.transport else None,
        None if in_app else undelivered.failure,
        in_app,
    )


_SORTS = {
    "next_due": "t.next_due_at ASC NULLS LAST, t.discharged_at DESC",
    "discharged": "t.discharged_at DESC",
    # the most escalated first; at the same level, TCM work due now above other work
    "escalation": "t.escalation_level DESC, w.tcm_due DESC, t.next_due_at ASC NULLS LAST",
    # "my patients": a step overdue, then one due today, then the rest
    "urgency": "w.has_overdue DESC, w.has_due_today DESC, t.escalation_level DESC, "
    "w.tcm_due DESC, t.next_due_at ASC NULLS LAST",
}
_COLUMNS = """t.transition_id, t.facility, COALESCE(ct.team, t.facility) AS team, t.protocol_id,
    t.protocol_version, t.status, t.discharged_at, t.risk_tier, t.lace, t.current_step,
    t.next_due_at, t.overdue_steps, t.escalation_level, t.assignees, t.readmitted_at,
    t.updated_at, t.version, t.owner, w.due_steps,
    ARRAY(SELECT s ->> 'step_id' FROM jsonb_array_elements(t.steps) AS s
          WHERE (s ->> 'missed_before_arrival')::boolean) AS missed_steps,
    ARRAY(SELECT s ->> 'step_id' FROM jsonb_array_elements(t.steps) AS s
          WHERE (s ->> 'appointment_late')::boolean) AS late_bookings,
    ARRAY(SELECT s ->> 'step_id' FROM jsonb_array_elements(t.steps) AS s
          WHERE s ->> 'status' = 'open' AND s ->> 'reported_at' IS NOT NULL) AS reported_steps"""
# Every open step with a due time, bucketed on the worklist's day ($1 now; $2-$4 each listed
# facility's day in its own zone, $5-$6 the site's day for the others; $7 the TCM elements):
# overdue, due on the day, later. A row lists them all, so a step due today shows although
# another step of the same transition is overdue.
_FROM = """transitions t
LEFT JOIN care_teams ct ON ct.transition_id = t.transition_id
LEFT JOIN unnest($2::text[], $3::timestamptz[], $4::timestamptz[])
    AS own_day (facility, day_start, day_end) ON own_day.facility = t.facility
CROSS JOIN LATERAL (
    SELECT COALESCE(jsonb_agg(jsonb_build_object(
               'step_id', s.step_id, 'bucket', s.bucket, 'due_at', s.due_text,
               'escalation_level', s.level, 'tcm', s.tcm, 'assignee', s.assignee,
               'missed_before_arrival', s.missed)
             ORDER BY s.rank, s.level DESC, s.tcm DESC, s.due_at), '[]'::jsonb) AS due_steps,
           COALESCE(bool_or(s.rank = 0), false) AS has_overdue,
           COALESCE(bool_or(s.rank = 1), false) AS has_due_today,
           COALESCE(bool_or(s.tcm AND s.rank < 2), false) AS tcm_due
    FROM (
        SELECT e ->> 'step_id' AS step_id, e ->> 'due_at' AS due_text, d.due_at,
               COALESCE((e ->> 'escalation_level')::integer, 0) AS level,
               COALESCE(e ->> 'tcm_element' = ANY($7::text[]), false) AS tcm,
               e ->> 'assignee' AS assignee,
               COALESCE((e ->> 'missed_before_arrival')::boolean, false) AS missed,
               r.rank, (ARRAY['overdue', 'due_today', 'later'])[r.rank + 1] AS bucket
        FROM jsonb_array_elements(t.steps) AS e
        CROSS JOIN LATERAL (SELECT (e ->> 'due_at')::timestamptz AS due_at) AS d
        CROSS JOIN LATERAL (SELECT CASE
            WHEN e ->> 'overdue_since' IS NOT NULL OR d.due_at < $1 THEN 0
            WHEN d.due_at >= COALESCE(own_day.day_start, $5)
                 AND d.due_at < COALESCE(own_day.day_end, $6) THEN 1
            ELSE 2 END AS rank) AS r
        WHERE e ->> 'status' = 'open' AND e ->> 'due_at' IS NOT NULL
    ) AS s
) AS w"""


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


def _bucket_params(query: TransitionQuery, site: SiteConfig, now: datetime) -> list[Any]:
    """$1-$7 of _FROM: now, each listed facility's day, the site's day, the TCM elements.
    The day is due_on, else today in each zone (a facility's own today)."""

    def day_in(zone: ZoneInfo) -> date:
        return query.due_on or now.astimezone(zone).date()

    facilities = sorted(site.facilities)
    bounds = [_day_bounds(day_in(site.zone_for(f)), site.zone_for(f)) for f in facilities]
    site_start, site_end = _day_bounds(day_in(site.calendar_zone()), site.calendar_zone())
    return [
        now,
        facilities,
        [b[0] for b in bounds],
        [b[1] for b in bounds],
        site_start,
        site_end,
        sorted(element.value for element in TCM_WORK),
    ]


def _due_steps(raw: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = json.loads(raw)
    for step in steps:
        step["due_at"] = datetime.fromisoformat(step["due_at"])
    return steps


async def search(
    pool: asyncpg.Pool,
    query: TransitionQuery,
    site: SiteConfig,
    now: datetime | None = None,
    *,
    patients: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """One page of transitions matching the query (and, given `patients`, of those patient
    keys: what a registry search found), and how many match in all; each row with its open
    steps bucketed (`due_steps`: overdue, due on the day, later). Every value is a bind
    parameter; only fixed clauses are put together."""
    params: list[Any] = _bucket_params(query, site, now or datetime.now(UTC))
    clauses: list[str] = []

    def where(clause: str, *values: Any) -> None:
        for value in values:
            params.append(value)
            clause = clause.replace("?", f"${len(params)}", 1)
        clauses.append(clause)

    if query.status:
        where("t.status = ?", query.status.value)
    if query.protocol:
        where("t.protocol_id = ?", query.protocol)
    if query.facility:
        where("t.facility = ?", query.facility)
    if query.team:
        where("COALESCE(ct.team, t.facility) = ?", query.team)
    if query.assignee:
        where("? = ANY(t.assignees)", query.assignee)
    if query.owner:
        where("t.owner = ?", query.owner)
    if query.overdue is not None:
        where("w.has_overdue" if query.overdue else "NOT w.has_overdue")
    if query.due_today:
        where("w.has_due_today")
    zone = site.calendar_zone()
    if query.discharged_from:
        where("t.discharged_at >= ?", datetime.combine(query.discharged_from, time(0), tzinfo=zone))
    if query.discharged_to:
        end = datetime.combine(query.discharged_to + timedelta(days=1), time(0), tzinfo=zone)
        where("t.discharged_at < ?", end)
    if query.risk_tier:
        where("t.risk_tier = ?", query.risk_tier.value)
    if patients is not None:
        where(
            "(EXISTS (SELECT 1 FROM encounter_details d WHERE d.transition_id = t.transition_id "
            "AND d.patient_key = ANY(?::text[])) OR EXISTS (SELECT 1 FROM encounters e "
            "WHERE e.transition_id = t.transition_id AND e.patient_key = ANY(?::text[])))",
            list(patients),
            list(patients),
        )
    condition = " AND ".join(clauses) or "TRUE"
    # $1-$7 are used by _FROM's lateral part, which the count needs for the bucket filters
    total = await pool.fetchval(f"SELECT count(*) FROM {_FROM} WHERE {condition}", *params)
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM {_FROM} WHERE {condition} ORDER BY {_SORTS[query.sort]} "
        f"LIMIT {query.page_size} OFFSET {(query.page - 1) * query.page_size}",
        *params,
    )
    return [dict(row) | {"due_steps": _due_steps(row["due_steps"])} for row in rows], int(
        total or 0
    )


async def timeline(pool: asyncpg.Pool, transition_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT seq, at, kind, step_id, actor, detail FROM transition_events "
        "WHERE transition_id = $1 ORDER BY seq",
        transition_id,
    )
    return [dict(row) for row in rows]
