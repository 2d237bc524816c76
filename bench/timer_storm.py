"""Timer storm: N transitions whose first deadline falls in the same instant; reports the
escalation lag (from the due instant to the notification recorded) p50/p99/max, and, with
--memory, the worker's RSS and PostgreSQL's size per open transition.

    python -m bench.timer_storm --transitions 500
    python -m bench.timer_storm --transitions 5000 --memory

Runs its own dev server (SQLite WAL file), embedded PostgreSQL and worker (in this process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.results import save
from bench.stack import embedded_stack, start_transition
from schemas.protocol import DueRule, DueUnit, EscalationLevel, Protocol, StepRule
from workers.runtime.logs import configure_logging
from workers.runtime.settings import Settings
from workers.worker import build_worker

STORM = Protocol(
    id="storm",
    version=1,
    title="one step due at the discharge instant, one escalation",
    tcm=False,
    period_days=1,
    steps=(
        StepRule(
            id="call",
            title="call",
            due=DueRule(unit=DueUnit.HOURS, amount=0),
            escalation=(EscalationLevel(level=1, role="care_manager", channel="worklist"),),
        ),
    ),
)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


async def wait_for_count(pool: Any, table: str, count: int, until: datetime) -> bool:
    """Whether `count` rows reached `table` before `until` (the storm must not start early)."""
    while datetime.now(UTC) < until:
        if await pool.fetchval(f"SELECT count(*) FROM {table}") >= count:
            return True
        await asyncio.sleep(0.5)
    return False


async def run(count: int, lead_seconds: float, memory: bool, cache: int) -> dict[str, Any]:
    async with embedded_stack(
        "cb-storm-",
        temporal_file="temporal.db",
        dev_server_extra_args=[
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ],
    ) as (state, pool, env):
        settings = Settings(
            state_dir=state, task_queue=f"storm-{uuid.uuid4()}", worker_cached_workflows=cache
        )
        empty_db = await pool.fetchval("SELECT pg_database_size(current_database())")
        due = datetime.now(UTC) + timedelta(seconds=lead_seconds)
        started = time.perf_counter()
        semaphore = asyncio.Semaphore(32)

        async def start(n: int) -> None:
            async with semaphore:
                await start_transition(
                    env.client,
                    settings.task_queue,
                    f"storm{n:07d}{uuid.uuid4().hex[:12]}",
                    facility="STORM",
                    discharged_at=due,
                    protocol=STORM,
                )

        async with build_worker(env.client, pool, settings):
            await asyncio.gather(*(start(n) for n in range(count)))
            start_seconds = time.perf_counter() - started
            planned = await wait_for_count(pool, "transitions", count, due)
            deadline = time.monotonic() + lead_seconds + 600
            while time.monotonic() < deadline:
                done = await pool.fetchval("SELECT count(*) FROM notifications")
                if done >= count:
                    break
                await asyncio.sleep(1)
            rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            lags = [
                float(row["lag"])
                for row in await pool.fetch(
                    "SELECT extract(epoch FROM created_at - scheduled_at) AS lag FROM notifications"
                )
            ]
            db_bytes = await pool.fetchval("SELECT pg_database_size(current_database())")
        return {
            "bench": "timer_storm",
            "at": datetime.now(UTC).isoformat(),
            "transitions": count,
            "worker_cached_workflows": cache,
            "start_seconds": round(start_seconds, 1),
            "all_planned_before_due": planned,
            "escalations_recorded": len(lags),
            "lag_s": {
                "p50": round(percentile(lags, 0.5), 2),
                "p99": round(percentile(lags, 0.99), 2),
                "max": round(max(lags, default=0), 2),
            },
            "memory": {
                "process_max_rss_mib": round(rss_mib, 1),
                "postgres_bytes_per_transition": int((db_bytes - empty_db) / count),
            }
            if memory
            else None,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--transitions", type=int, default=500)
    parser.add_argument("--lead", type=float, default=60, help="seconds until the shared deadline")
    parser.add_argument("--memory", action="store_true", help="report RSS and DB size too")
    parser.add_argument(
        "--cache", type=int, default=Settings().worker_cached_workflows, help="sticky cache size"
    )
    args = parser.parse_args()
    configure_logging("WARNING", "json")
    result = asyncio.run(run(args.transitions, args.lead, args.memory, args.cache))
    print(json.dumps(result, indent=2))
    save("timer-storm", result)


if __name__ == "__main__":
    main()
