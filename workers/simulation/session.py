"""A simulation session: one feed, one staff model, run against each protocol set (the base
folder, then the comparison laid over it), each on a fresh server and database.

With `--compare` on a machine of two cores or more, the two runs go at the same time, each in
a process of its own (its own core, GIL and test server) against one PostgreSQL server: each
run keeps one core busy (its worker, intake and staff share one event loop), so on this
2-core machine the pair takes little longer than one. With faults they run in turn: each
restarts the embedded PostgreSQL, which the other would see as its own fault."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from temporalio.client import WorkflowFailureError, WorkflowQueryFailedError

from schemas.protocol_library import load_library
from workers.runtime import embedded
from workers.runtime.embedded import StackError
from workers.runtime.settings import Settings
from workers.simulation import engine
from workers.simulation.faults import Fault
from workers.simulation.faults import plan as fault_plan
from workers.simulation.feed import FeedMessage, FeedSpec, generate
from workers.simulation.replay import replay
from workers.simulation.report import Summary, summarize
from workers.simulation.staff import StaffModel


def first_day(wanted: date | None, zone: ZoneInfo, now: datetime | None = None) -> datetime:
    """Local midnight of the first simulated day: `wanted`, or the next Monday. The test
    server's clock starts at the wall clock and only moves forward, so it is after today."""
    today = (now or datetime.now(zone)).astimezone(zone).date()
    if wanted is None:
        wanted = today + timedelta(days=7 - today.weekday())
    elif wanted <= today:
        raise StackError(
            f"the first simulated day must be after today ({today.isoformat()}): the "
            "simulation's clock starts now and only moves forward"
        )
    return datetime.combine(wanted, time(0), tzinfo=zone)


async def simulate_sets(
    settings: Settings,
    protocols: Path,
    compare: Path | None,
    staff: StaffModel,
    spec: FeedSpec | Path,
    first: date | None = None,
    faults: bool = False,
) -> list[Summary]:
    """`spec`: the feed to generate, or a file or folder of ER7 files to replay. `faults`:
    the same faults, planned from the generated feed's seed, in each run (faults.py)."""
    zone = load_library(protocols).site.calendar_zone()
    start = first_day(first, zone)
    feed = replay(spec, start, zone) if isinstance(spec, Path) else generate(spec, start, zone)
    with tempfile.TemporaryDirectory(prefix="carebridge-sim-") as scratch:
        sets = [(str(protocols), protocols)]
        if compare is not None:
            laid = engine.protocol_set(protocols, compare, Path(scratch) / "compare")
            load_library(laid)  # a broken comparison folder stops before the first run
            sets.append((str(compare), laid))
        seed = spec.seed if isinstance(spec, FeedSpec) else 1
        planned = fault_plan(seed, start) if faults else None
        runs = [
            SetRun(settings, label, folder, staff, feed, start, planned) for label, folder in sets
        ]
        if len(runs) > 1 and not faults and (os.cpu_count() or 1) > 1:
            return await _side_by_side(runs)
        return [await run.summary() for run in runs]


@dataclass(frozen=True)
class SetRun:
    """One protocol set's run of the session's feed and staff (picklable: it may run in a
    process of its own)."""

    settings: Settings
    label: str
    folder: Path
    staff: StaffModel
    feed: list[FeedMessage]
    start: datetime
    faults: list[Fault] | None

    async def summary(self) -> Summary:
        try:
            result = await engine.run(
                self.settings, self.folder, self.staff, self.feed, self.start, self.faults
            )
        except (WorkflowFailureError, WorkflowQueryFailedError) as exc:
            raise StackError(
                f"the simulation against {self.label} stopped: a transition failed ({exc})"
            ) from None
        return summarize(result, self.label)

    def summary_here(self) -> Summary:
        """In a spawned process: its own event loop, logging as the command's."""
        from workers.runtime.logs import configure_logging

        configure_logging("ERROR", self.settings.log_format)
        return asyncio.run(self.summary())


async def _side_by_side(runs: list[SetRun]) -> list[Summary]:
    """Each run in a process of its own, at the same time, on this process's PostgreSQL
    (the embedded one started here once, not by each)."""
    url = SecretStr(await embedded.database_url(runs[0].settings))
    shared = [
        replace(r, settings=r.settings.model_copy(update={"database_url": url})) for r in runs
    ]
    loop = asyncio.get_running_loop()
    spawn = multiprocessing.get_context("spawn")  # not a fork of this loop and its threads
    with ProcessPoolExecutor(max_workers=len(runs), mp_context=spawn) as processes:
        summaries = [loop.run_in_executor(processes, run.summary_here) for run in shared]
        return list(await asyncio.gather(*summaries))
