"""Evidence that TRC information reached the outpatient record (NCQA TRC FAQ 2024-02-15):
a "filed" action a person records, or a document event (MDM^T02/T04) of the index stay.
The reports (store/reports.py) count a TRC component only with such evidence inside its
window; an ADT received by itself is not evidence. No PHI: ids, instants and the actor."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg


class Component(StrEnum):
    ADMISSION_NOTIFICATION = "admission_notification"
    DISCHARGE_INFORMATION = "discharge_information"


class Source(StrEnum):
    FILED = "filed"  # a person recorded that the information was filed in the record
    DOCUMENT = "document"  # a document event (MDM) for the index stay arrived


@dataclass(frozen=True)
class Evidence:
    transition_id: str
    component: Component
    source: Source
    at: datetime
    actor: str | None = None
    inbox_id: int | None = None


async def record(
    pool: asyncpg.Pool, evidence: Evidence, *, recorded_at: datetime | None = None
) -> bool:
    """Idempotent: True when this evidence is new, False when it was recorded already.
    `recorded_at` (None: the database's now) is when carebridge learned of it."""
    status = await pool.execute(
        """
        INSERT INTO trc_evidence (transition_id, component, source, at, actor, inbox_id,
                                  recorded_at)
        VALUES ($1, $2, $3, $4, $5, $6, coalesce($7::timestamptz, now()))
        ON CONFLICT DO NOTHING
        """,
        evidence.transition_id,
        evidence.component.value,
        evidence.source.value,
        evidence.at,
        evidence.actor,
        evidence.inbox_id,
        recorded_at,
    )
    return bool(status.endswith(" 1"))


async def of_transition(pool: asyncpg.Pool, transition_id: str) -> list[Evidence]:
    rows = await pool.fetch(
        "SELECT transition_id, component, source, at, actor, inbox_id FROM trc_evidence "
        "WHERE transition_id = $1 ORDER BY at",
        transition_id,
    )
    return [
        Evidence(
            transition_id=row["transition_id"],
            component=Component(row["component"]),
            source=Source(row["source"]),
            at=row["at"],
            actor=row["actor"],
            inbox_id=row["inbox_id"],
        )
        for row in rows
    ]
