"""A projection write made again at the same version (the workflow task that made it
failed after its local activity ran, and its retry built the row again with its own
workflow.now()) replaces the row: the retry is what Temporal's history and result hold.
An older version still never overwrites a newer one."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from schemas.transition import TcmOutcome, TransitionOutcome, TransitionStatus, TrcOutcome
from store import projection
from tests.integration.test_simulation_clock import record_with_a_call


def closed(at: datetime) -> TransitionOutcome:
    return TransitionOutcome(
        closed_at=at,
        status=TransitionStatus.COMPLETED,
        reason="transition period ended",
        tcm=TcmOutcome(applicable=True, reasons=["no interactive contact"]),
        trc=TrcOutcome(
            discharge_information=False, patient_engagement=False, medication_reconciliation=False
        ),
    )


async def test_a_close_written_again_at_its_version_takes_the_retry_and_an_older_one_is_ignored(
    pool: asyncpg.Pool,
) -> None:
    first_try = datetime.now(UTC).replace(microsecond=0)
    active = record_with_a_call(first_try, f"RTY{uuid.uuid4().hex[:6].upper()}")
    close = active.model_copy(
        update={"version": 2, "events": (), "status": TransitionStatus.COMPLETED}
    )
    assert await projection.upsert(pool, active)
    assert await projection.upsert(pool, close.model_copy(update={"outcome": closed(first_try)}))

    retried = close.model_copy(update={"outcome": closed(first_try + timedelta(seconds=3))})
    assert await projection.upsert(pool, retried)
    assert not await projection.upsert(pool, active)  # version 1, late: ignored

    row = await pool.fetchrow(
        "SELECT version, status, outcome FROM transitions WHERE transition_id = $1",
        active.transition_id,
    )
    assert row is not None
    assert (row["version"], row["status"]) == (2, "completed")
    assert retried.outcome is not None
    assert json.loads(row["outcome"]) == retried.outcome.model_dump(mode="json")
