"""The projection rows of transitions whose workflow has ended, repaired from Temporal: a
completed workflow's row takes its whole final state (the outcome, the steps, the version),
one that was cancelled, terminated or failed takes the status. Used by the nightly sweep
(activities/maintenance.py) and by `carebridge simulate` after its run; idempotent."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from schemas import keys
from schemas.clock import Clock, wall_clock
from schemas.final_projection import final_record
from schemas.transition import TransitionState, TransitionStatus
from store import projection


async def repair_ended(
    pool: asyncpg.Pool, client: Client, transitions: Iterable[str], clock: Clock = wall_clock
) -> list[str]:
    """Of `transitions` (active in the projection), those found ended and repaired;
    `clock` stamps the rows."""
    repaired = []
    for transition in transitions:
        handle = client.get_workflow_handle(
            keys.workflow_id(transition), result_type=TransitionState
        )
        try:
            description = await handle.describe()
        except RPCError:
            continue  # unknown to Temporal (retention): leave it for an operator
        if description.status == WorkflowExecutionStatus.COMPLETED:
            final: TransitionState = await handle.result()
            status: TransitionStatus | None = final.status
            key = await pool.fetchval(
                "SELECT encounter_key FROM transitions WHERE transition_id = $1", transition
            )
            if key is not None:  # the last write gave up: the whole final row, not the status
                await projection.upsert(pool, final_record(final, key), at=await clock())
        else:
            status = ended_status(description.status)
        if status is None:
            continue  # still running (visibility had not caught up): nothing to repair
        await pool.execute(
            "UPDATE transitions SET status = $2, current_step = NULL, next_due_at = NULL, "
            "updated_at = $3 WHERE transition_id = $1 AND status = 'active'",
            transition,
            status.value,
            await clock(),
        )
        repaired.append(transition)
    return repaired


def ended_status(status: WorkflowExecutionStatus | None) -> TransitionStatus | None:
    """The projection status of a workflow that ended without a result to read; None for
    one that has not ended (running, or continued as new): never marked failed."""
    return (
        {
            WorkflowExecutionStatus.CANCELED: TransitionStatus.CANCELLED,
            WorkflowExecutionStatus.TERMINATED: TransitionStatus.TERMINATED,
            WorkflowExecutionStatus.FAILED: TransitionStatus.FAILED,
            WorkflowExecutionStatus.TIMED_OUT: TransitionStatus.FAILED,
        }.get(status)
        if status is not None
        else None
    )
