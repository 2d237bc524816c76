"""The raw Temporal timer storm that bench.timer_storm compares carebridge against.

`count` trivial workflows sleep until one instant, run one local activity and complete. One
unsandboxed Python worker caches them all, with carebridge's worker slots. The activity
writes a row whose `created_at` (PostgreSQL's now()) minus the instant is the lag: carebridge's
lag is measured the same way, from a notification row. The client is a plain one (no
carebridge codec), so this is what Temporal itself costs on the same server.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

TABLE = "bench_raw_storm"
_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    n            integer PRIMARY KEY,
    scheduled_at timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
)
"""


class RawActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="RawStormFired")
    async def fired(self, n: int, due_epoch: float) -> None:
        """Record that workflow `n` woke (idempotent: a retried attempt keeps the first)."""
        await self._pool.execute(
            f"INSERT INTO {TABLE} (n, scheduled_at) VALUES ($1, to_timestamp($2)) "
            "ON CONFLICT (n) DO NOTHING",
            n,
            due_epoch,
        )


@workflow.defn(name="RawStorm")
class RawStorm:
    @workflow.run
    async def run(self, n: int, due_epoch: float) -> None:
        wait = due_epoch - workflow.now().timestamp()
        if wait > 0:
            await workflow.sleep(wait)
        await workflow.execute_local_activity(
            "RawStormFired", args=[n, due_epoch], start_to_close_timeout=timedelta(seconds=60)
        )


async def _wait_for_rows(pool: asyncpg.Pool, count: int, until: float) -> None:
    while time.monotonic() < until:
        if await pool.fetchval(f"SELECT count(*) FROM {TABLE}") >= count:
            return
        await asyncio.sleep(1)


async def run(
    target: str,
    pool: asyncpg.Pool,
    *,
    count: int,
    lead_seconds: float,
    cache: int,
    slots: int,
    concurrency: int = 32,
) -> dict[str, Any]:
    """Start `count` raw workflows due `lead_seconds` from now on the server at `target`, run
    them on one worker (`cache` cached workflows, `slots` activity and local-activity slots)
    and return the lags (seconds, one per workflow that fired) and how the starts went."""
    client = await Client.connect(target)
    await pool.execute(_CREATE)
    await pool.execute(f"TRUNCATE {TABLE}")
    queue = f"raw-storm-{uuid.uuid4()}"
    due = datetime.now(UTC) + timedelta(seconds=lead_seconds)
    semaphore = asyncio.Semaphore(concurrency)

    async def start(n: int) -> None:
        async with semaphore:
            await client.start_workflow(
                RawStorm.run, args=[n, due.timestamp()], id=f"{queue}-{n}", task_queue=queue
            )

    async with Worker(
        client,
        task_queue=queue,
        workflows=[RawStorm],
        activities=[RawActivities(pool).fired],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_cached_workflows=cache,
        max_concurrent_activities=slots,
        max_concurrent_local_activities=slots,
    ):
        started = time.perf_counter()
        await asyncio.gather(*(start(n) for n in range(count)))
        start_seconds = time.perf_counter() - started
        await _wait_for_rows(pool, count, time.monotonic() + lead_seconds + 600)
    rows = await pool.fetch(
        f"SELECT extract(epoch FROM created_at - scheduled_at) AS lag FROM {TABLE}"
    )
    return {
        "start_seconds": round(start_seconds, 1),
        "all_started_before_due": start_seconds < lead_seconds,
        "lags": [float(row["lag"]) for row in rows],
    }
