"""Timer storm: N transitions whose first deadline falls in the same instant; reports the
escalation lag (from the due instant to the notification recorded) p50/p99/max next to the
raw Temporal timer storm of the same run (bench/raw_storm.py: N trivial workflows sleeping
until one instant, one local activity each) and their ratios, and, with --memory, the
worker's RSS and PostgreSQL's size per open transition.

    python -m bench.timer_storm --transitions 500
    python -m bench.timer_storm --transitions 5000 --lead 240 --cache 6000
    python -m bench.timer_storm --transitions 5000 --lead 240 --defaults   # shipped cache
    python -m bench.timer_storm --transitions 5000 --memory

The raw storm runs first, then carebridge's, on the same dev server (SQLite WAL file) and
embedded PostgreSQL, each with its own worker in this process and the same slots. --cache
(default: --transitions, every workflow cached) is both workers' sticky cache; --defaults
runs carebridge's worker with the shipped Settings() cache instead (the raw one keeps --cache).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import raw_storm
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


def summary(lags: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(lags, 0.5), 2),
        "p99": round(percentile(lags, 0.99), 2),
        "max": round(max(lags, default=0), 2),
    }


def ratios(ours: dict[str, float], raw: dict[str, float]) -> dict[str, float | None]:
    """carebridge's lag over the raw one, per figure (None where the raw lag is zero)."""
    return {key: round(ours[key] / raw[key], 2) if raw[key] > 0 else None for key in ours}


def current_rss_mib() -> float:
    """This process's resident set now (Linux), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def sample_peak_rss(peak: list[float]) -> None:
    """Keep the highest RSS seen in peak[0], once a second, until cancelled."""
    while True:
        peak[0] = max(peak[0], current_rss_mib())
        await asyncio.sleep(1)


async def wait_for_count(pool: Any, table: str, count: int, until: datetime) -> bool:
    """Whether `count` rows reached `table` before `until` (the storm must not start early)."""
    while datetime.now(UTC) < until:
        if await pool.fetchval(f"SELECT count(*) FROM {table}") >= count:
            return True
        await asyncio.sleep(0.5)
    return False


async def run(
    count: int, lead_seconds: float, memory: bool, cache: int, defaults: bool = False
) -> dict[str, Any]:
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
        settings = Settings(state_dir=state, task_queue=f"storm-{uuid.uuid4()}")
        if not defaults:
            settings = settings.model_copy(update={"worker_cached_workflows": cache})
        raw = await raw_storm.run(
            env.client.service_client.config.target_host,
            pool,
            count=count,
            lead_seconds=lead_seconds,
            cache=cache,
            slots=settings.database_pool_size,
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

        # the raw storm's worker ran in this process first: ru_maxrss may be its peak, so
        # carebridge's phase is sampled on its own
        phase_peak = [current_rss_mib()]
        sampler = asyncio.create_task(sample_peak_rss(phase_peak))
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
            sampler.cancel()
            lags = [
                float(row["lag"])
                for row in await pool.fetch(
                    "SELECT extract(epoch FROM created_at - scheduled_at) AS lag FROM notifications"
                )
            ]
            db_bytes = await pool.fetchval("SELECT pg_database_size(current_database())")
        lag, raw_lag = summary(lags), summary(raw["lags"])
        return {
            "bench": "timer_storm",
            "at": datetime.now(UTC).isoformat(),
            "transitions": count,
            "worker_cached_workflows": settings.worker_cached_workflows,
            "start_seconds": round(start_seconds, 1),
            "all_planned_before_due": planned,
            "escalations_recorded": len(lags),
            "lag_s": lag,
            "raw": {
                "worker_cached_workflows": cache,
                "start_seconds": raw["start_seconds"],
                "all_started_before_due": raw["all_started_before_due"],
                "fired": len(raw["lags"]),
                "lag_s": raw_lag,
            },
            "ratio_to_raw": ratios(lag, raw_lag),
            "memory": {
                "process_max_rss_mib": round(rss_mib, 1),
                "carebridge_phase_peak_rss_mib": round(phase_peak[0], 1),
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
        "--cache", type=int, help="both workers' sticky cache size (default: --transitions)"
    )
    parser.add_argument(
        "--defaults",
        action="store_true",
        help=f"carebridge with the shipped cache ({Settings().worker_cached_workflows})",
    )
    args = parser.parse_args()
    configure_logging("WARNING", "json")
    cache = args.cache if args.cache is not None else args.transitions
    result = asyncio.run(run(args.transitions, args.lead, args.memory, cache, args.defaults))
    print(json.dumps(result, indent=2))
    print(table(result))
    save("timer-storm", result)


def table(result: dict[str, Any]) -> str:
    """carebridge's lag next to the raw storm's, ratios first."""
    ours, raw, ratio = result["lag_s"], result["raw"]["lag_s"], result["ratio_to_raw"]
    lines = [
        f"{'lag (s)':10}{'ratio':>8}{'carebridge':>12}{'raw':>10}",
        *(f"{key:10}{ratio[key]!s:>8}{ours[key]:>12}{raw[key]:>10}" for key in ours),
        f"cache: carebridge {result['worker_cached_workflows']}, "
        f"raw {result['raw']['worker_cached_workflows']}; "
        f"fired: carebridge {result['escalations_recorded']}, raw {result['raw']['fired']} "
        f"of {result['transitions']}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
