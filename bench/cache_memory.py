"""Memory per cached transition, for sizing CAREBRIDGE_WORKER_CACHED_WORKFLOWS and the
worker's memory limit: N transitions of a shipped protocol, discharged `--age-days` ago so
their histories hold every step, deadline and escalation of that part of their 30 days, all
kept in one worker's cache; the worker process's resident memory before and after.

    python -m bench.cache_memory --transitions 300 --protocol discharge-home-health --age-days 20

Runs its own dev server, embedded PostgreSQL and worker (in this process).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.common import WorkflowIDConflictPolicy

from bench.results import save
from bench.stack import embedded_stack, start_transition
from schemas.protocol_library import load_library
from workers.runtime.logs import configure_logging
from workers.runtime.settings import Settings
from workers.worker import build_worker

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """This process's resident memory now (not its peak)."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


async def settled(pool: Any, client: Any, ids: list[str], settle_seconds: float) -> list[int]:
    """Wait until every transition is projected and the history lengths stop growing; the
    history lengths."""
    while await pool.fetchval("SELECT count(*) FROM transitions") < len(ids):  # noqa: ASYNC110
        await asyncio.sleep(1)
    lengths: list[int] = []
    while True:
        await asyncio.sleep(settle_seconds)
        now = []
        for workflow_id in ids:
            described = await client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(
                    namespace=client.namespace,
                    execution={"workflow_id": workflow_id},
                )
            )
            now.append(described.workflow_execution_info.history_length)
        if now == lengths:
            return now
        lengths = now


async def run(count: int, protocol_id: str, age_days: float) -> dict[str, Any]:
    async with embedded_stack("cb-cache-") as (state, pool, env):
        settings = Settings(
            state_dir=state, task_queue=f"cache-{uuid.uuid4()}", worker_cached_workflows=count + 10
        )
        protocol = load_library(settings.protocols_dir).latest(protocol_id)
        discharged = datetime.now(UTC) - timedelta(days=age_days)

        async def start(n: int) -> str:
            return await start_transition(
                env.client,
                settings.task_queue,
                f"cache{n:07d}{uuid.uuid4().hex[:12]}",
                facility="CACHE",
                discharged_at=discharged,
                protocol=protocol,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            )

        async with build_worker(env.client, pool, settings):
            warm = [await start(n) for n in range(3)]  # imports, sandbox, first replays
            await settled(pool, env.client, warm, 3)
            before = rss_bytes()
            ids = list(await asyncio.gather(*(start(n) for n in range(3, 3 + count))))
            lengths = await settled(pool, env.client, ids, 5)
            after = rss_bytes()
    return {
        "bench": "cache_memory",
        "at": datetime.now(UTC).isoformat(),
        "transitions": count,
        "protocol": protocol_id,
        "age_days": age_days,
        "history_events": {"min": min(lengths), "max": max(lengths)},
        "rss_mib_before": round(before / 2**20, 1),
        "rss_mib_after": round(after / 2**20, 1),
        "kib_per_cached_transition": round((after - before) / count / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transitions", type=int, default=300)
    parser.add_argument("--protocol", default="discharge-home-health")
    parser.add_argument("--age-days", type=float, default=20.0)
    args = parser.parse_args()
    configure_logging("WARNING", "json")
    result = asyncio.run(run(args.transitions, args.protocol, args.age_days))
    print(json.dumps(result, indent=2))
    save("cache-memory", result)


if __name__ == "__main__":
    main()
