"""PostgreSQL away for 48 hours: the projection write gives up within its bound instead of
retrying in the workflow task for ever, the transition runs on (timers, state), its history
stays small, and the row is written again once the database is back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import time, timedelta

import pytest_asyncio
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from schemas.transition import ProjectionRecord, TransitionStatus
from tests.workflow.support import (
    advance_to,
    new_worker,
    next_weekday,
    planned_state,
    start_time_skipping_env,
    start_transition,
)
from workflows.transition import TransitionWorkflow

WRITTEN: list[ProjectionRecord] = []
DATABASE_UP = [False]


@activity.defn(name="record_transition")
async def record_while_up(record: ProjectionRecord) -> bool:
    if not DATABASE_UP[0]:
        raise ConnectionRefusedError("PostgreSQL is away")
    WRITTEN.append(record)
    return True


@pytest_asyncio.fixture
async def own_env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of its own: its worker's failing local activities stay out of the rest."""
    env = await start_time_skipping_env()
    yield env
    await env.shutdown()


async def test_a_48_hour_database_outage_keeps_history_small_and_repairs_the_row(
    own_env: WorkflowEnvironment,
) -> None:
    skipping_env = own_env
    DATABASE_UP[0] = False
    async with new_worker(skipping_env, record=record_while_up) as worker:
        monday = next_weekday(await skipping_env.get_current_time(), 0, time(9, 0))
        await advance_to(skipping_env, monday)
        handle = await start_transition(skipping_env, worker, monday)
        await planned_state(handle)
        for _ in range(12):  # 48 hours, in steps the test server answers within its timeout
            await skipping_env.sleep(timedelta(hours=4))
        state = await handle.query(TransitionWorkflow.get_state)
        assert state.status == TransitionStatus.ACTIVE  # it runs on without its projection
        outage_events = len((await handle.fetch_history()).events)
        assert outage_events < 1000, outage_events  # unbounded retries: ~17,000
        assert [r for r in WRITTEN if r.transition_id == state.transition_id] == []

        DATABASE_UP[0] = True
        await skipping_env.sleep(timedelta(hours=4, minutes=5))  # the next repair write
        mine = [r for r in WRITTEN if r.transition_id == state.transition_id]
        latest = await handle.query(TransitionWorkflow.get_state)
        assert mine and mine[-1].version == latest.version
        assert any(e.kind == "started" for r in mine for e in r.events)  # nothing lost
        await handle.terminate("test over")
