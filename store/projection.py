"""Queries on the transition projection and its timeline."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from schemas.site import Transport
from schemas.social_needs import ReferralOutcome
from schemas.transition import ProjectionRecord, StepStatus, TimelineEvent, UndeliveredNotice
from schemas.worklist import TransitionQuery

LIVE = (StepStatus.OPEN, StepStatus.PENDING)

_UPSERT = """
INSERT INTO transitions AS t (transition_id, encounter_key, facility, protocol_id,
    protocol_version, status, discharged_at, risk_tier, lace, current_step, next_due_at,
    overdue_steps, escalation_level, outcome, updated_at, version, steps, assignees,
    readmitted_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, now(), $15,
        $16::jsonb, $17, $18)
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
    updated_at = now(),
    version = EXCLUDED.version
WHERE t.version < EXCLUDED.version
"""

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
CONTROLLED_WORDS = frozenset({"done", *(o.value for o in ReferralOutcome)})
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


async def upsert(pool: asyncpg.Pool, record: ProjectionRecord) -> bool:
    """Write the row unless a newer version is there, and append the timeline events (both
    idempotent, in one transaction); True when the row was written."""
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
            await conn.execute(_UNDELIVERED, *_undelivered_row(undelivered))
    return bool(result.endswith(" 1"))


# A notice whose delivery gave up while PostgreSQL was away reaches the outbox with the row:
# an e-mail or page as undelivered (with the reason), a worklist notice as in place.
_UNDELIVERED = """
INSERT INTO notifications AS n (transition_id, step_id, level, role, channel, due_at,
    scheduled_at, transport, failure, delivered_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $10 THEN now() END)
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
    "next_due": "next_due_at ASC NULLS LAST, discharged_at DESC",
    "discharged": "discharged_at DESC",
    "escalation": "escalation_level DESC, next_due_at ASC NULLS LAST",
}
_COLUMNS = """transition_id, facility, protocol_id, protocol_version, status, discharged_at,
    risk_tier, lace, current_step, next_due_at, overdue_steps, escalation_level, assignees,
    readmitted_at, updated_at, version,
    ARRAY(SELECT s ->> 'step_id' FROM jsonb_array_elements(steps) AS s
          WHERE (s ->> 'missed_before_arrival')::boolean) AS missed_steps"""


async def search(
    pool: asyncpg.Pool, query: TransitionQuery, zone: ZoneInfo
) -> tuple[list[dict[str, Any]], int]:
    """One page of transitions matching the query, and how many match in all. Every value is
    a bind parameter; only fixed clauses are put together."""
    clauses: list[str] = []
    params: list[Any] = []

    def where(clause: str, *values: Any) -> None:
        for value in values:
            params.append(value)
            clause = clause.replace("?", f"${len(params)}", 1)
        clauses.append(clause)

    if query.status:
        where("status = ?", query.status.value)
    if query.protocol:
        where("protocol_id = ?", query.protocol)
    if query.facility:
        where("facility = ?", query.facility)
    if query.assignee:
        where("? = ANY(assignees)", query.assignee)
    if query.overdue is not None:
        where(
            "cardinality(overdue_steps) > 0" if query.overdue else "cardinality(overdue_steps) = 0"
        )
    if query.due_today:
        today = datetime.now(zone).date()
        start = datetime.combine(today, time(0, 0), tzinfo=zone)
        where("next_due_at >= ? AND next_due_at < ?", start, start + timedelta(days=1))
    if query.discharged_from:
        where("discharged_at >= ?", datetime.combine(query.discharged_from, time(0), tzinfo=zone))
    if query.discharged_to:
        end = datetime.combine(query.discharged_to + timedelta(days=1), time(0), tzinfo=zone)
        where("discharged_at < ?", end)
    if query.risk_tier:
        where("risk_tier = ?", query.risk_tier.value)
    condition = " AND ".join(clauses) or "TRUE"
    total = await pool.fetchval(f"SELECT count(*) FROM transitions WHERE {condition}", *params)
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM transitions WHERE {condition} ORDER BY {_SORTS[query.sort]} "
        f"LIMIT {query.page_size} OFFSET {(query.page - 1) * query.page_size}",
        *params,
    )
    return [dict(row) for row in rows], int(total or 0)


async def timeline(pool: asyncpg.Pool, transition_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT seq, at, kind, step_id, actor, detail FROM transition_events "
        "WHERE transition_id = $1 ORDER BY seq",
        transition_id,
    )
    return [dict(row) for row in rows]
