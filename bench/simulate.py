"""Simulation speed: `carebridge simulate`'s engine at a larger size (by default a month at
100 discharges a weekday), on its own embedded PostgreSQL and time-skipping test server;
prints the wall time, simulated days per wall minute, transitions per wall second and each
run's invariant problems (none expected), and writes JSON under bench/results/.

    python -m bench.simulate                                     # 30 days x 100 a day
    python -m bench.simulate --days 5 --discharges-per-day 40 --compare DIR

A simulated run spans its discharge days and the staff's horizon after the last one
(engine.HORIZON), so "simulated days" counts both."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.results import save
from workers.runtime.embedded import start_embedded_postgres
from workers.runtime.logs import configure_logging
from workers.runtime.settings import Settings
from workers.simulation import engine
from workers.simulation.feed import FeedSpec
from workers.simulation.report import Summary
from workers.simulation.session import simulate_sets
from workers.simulation.staff import load_staff

ROOT = Path(__file__).resolve().parents[1]


def figures(summary: Summary, days: int) -> dict[str, Any]:
    """One run's speed: `days` simulated in its wall time."""
    seconds = max(summary.wall_seconds, 0.1)
    return {
        "protocols": summary.protocols,
        "discharges": summary.discharges,
        "wall_seconds": summary.wall_seconds,
        "simulated_days": days,
        "simulated_days_per_wall_minute": round(days / (seconds / 60), 1),
        "transitions_per_wall_second": round(summary.discharges / seconds, 2),
        "longest_history": summary.longest_history,
        "invariant_problems": summary.invariant_problems,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="cb-sim-bench-"))
    try:
        server = await asyncio.to_thread(
            start_embedded_postgres, state / "pg", cleanup_mode="delete"
        )
        settings = Settings(
            state_dir=state,
            protocols_dir=args.protocols,
            database_url=SecretStr(str(server.get_uri())),
        )
        spec = FeedSpec(days=args.days, discharges_per_day=args.discharges_per_day, seed=args.seed)
        began = time.monotonic()
        summaries = await simulate_sets(
            settings, args.protocols, args.compare, load_staff(args.staff), spec
        )
        wall = time.monotonic() - began
    finally:
        shutil.rmtree(state, ignore_errors=True)
    simulated = args.days + engine.HORIZON.days
    return {
        "bench": "simulate",
        "at": datetime.now(UTC).isoformat(),
        "days": args.days,
        "discharges_per_day": args.discharges_per_day,
        "staff": str(args.staff),
        "wall_seconds": round(wall, 1),
        "simulated_days_per_wall_minute": round(simulated * len(summaries) / (wall / 60), 1),
        "runs": [figures(s, simulated) for s in summaries],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=30, help="days of discharges")
    parser.add_argument(
        "--discharges-per-day", type=float, default=100.0, help="on an average weekday"
    )
    parser.add_argument("--staff", type=Path, default=ROOT / "docs" / "simulation" / "staff.yaml")
    parser.add_argument("--protocols", type=Path, default=ROOT / "protocols")
    parser.add_argument("--compare", type=Path, default=None, help="a second protocol folder")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    configure_logging("ERROR", "json")
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    save("simulate", result)
    for one in result["runs"]:
        print(
            f"{one['protocols']}: {one['discharges']} discharges in {one['wall_seconds']} s, "
            f"{one['simulated_days_per_wall_minute']} simulated days per wall minute, "
            f"{one['transitions_per_wall_second']} transitions per wall second, invariants: "
            + ("all hold" if not one["invariant_problems"] else "broken")
        )
        for problem in one["invariant_problems"]:
            print(f"invariant broken ({one['protocols']}): {problem}")
    if any(one["invariant_problems"] for one in result["runs"]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
