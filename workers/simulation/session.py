"""A simulation session: one feed, one staff model, run against each protocol set in turn
(the base folder, then the comparison laid over it), each on a fresh server and database."""

from __future__ import annotations

import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from temporalio.client import WorkflowFailureError, WorkflowQueryFailedError

from schemas.protocol_library import load_library
from workers.runtime.embedded import StackError
from workers.runtime.settings import Settings
from workers.simulation import engine
from workers.simulation.faults import plan as fault_plan
from workers.simulation.feed import FeedSpec, generate
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
        summaries = []
        for label, folder in sets:
            try:
                seed = spec.seed if isinstance(spec, FeedSpec) else 1
                planned = fault_plan(seed, start) if faults else None
                result = await engine.run(settings, folder, staff, feed, start, planned)
            except (WorkflowFailureError, WorkflowQueryFailedError) as exc:
                raise StackError(
                    f"the simulation against {label} stopped: a transition failed ({exc})"
                ) from None
            summaries.append(summarize(result, label))
    return summaries
