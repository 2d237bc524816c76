"""The intake's own cost per message, alone: CPU milliseconds of this process (the intake's
Python and the Temporal client) and PostgreSQL round trips, for bench.load's traffic handled
one message at a time, with no worker running. Other load on the machine changes these far
less than any rate (issue 23: find the cost, then cut it).

    python -m bench.intake --messages 500

Runs its own embedded PostgreSQL and dev server. Counting the round trips (asyncpg's query
logger) costs CPU too: take the CPU figure from a run with --no-round-trips.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench.load import traffic
from bench.results import save
from bench.stack import embedded_stack
from workers.runtime.logs import configure_logging
from workers.runtime.services import Services
from workers.runtime.settings import Settings

WARM_UP = 50  # messages before the count: connections made, statements prepared


async def run(count: int, round_trips: bool) -> dict[str, Any]:
    statements = 0
    counting = False

    def logged(_record: Any) -> None:
        nonlocal statements
        if counting:
            statements += 1

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(logged)

    messages = traffic(WARM_UP + count)
    async with embedded_stack("cb-intake-", pool_init=init if round_trips else None) as (
        state,
        pool,
        env,
    ):
        settings = Settings(state_dir=state, task_queue=f"intake-{uuid.uuid4()}")
        intake = Services.build(settings, pool, env.client).intake
        for raw in messages[:WARM_UP]:
            await intake.handle(raw)
        codes: Counter[str] = Counter()
        counting = True
        cpu, wall = time.process_time(), time.perf_counter()
        for raw in messages[WARM_UP:]:
            codes[(await intake.handle(raw)).code.value] += 1
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        await intake.close()
    return {
        "bench": "intake",
        "at": datetime.now(UTC).isoformat(),
        "messages": count,
        "ack_codes": dict(codes),
        "cpu_ms_per_message": round(cpu * 1000 / count, 2),
        "wall_ms_per_message": round(wall * 1000 / count, 2),
        "round_trips_per_message": round(statements / count, 2) if round_trips else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--no-round-trips", action="store_true", help="do not count them")
    args = parser.parse_args()
    configure_logging("WARNING", "json")
    result = asyncio.run(run(args.messages, not args.no_round_trips))
    print(json.dumps(result, indent=2))
    save("intake", result)


if __name__ == "__main__":
    main()
