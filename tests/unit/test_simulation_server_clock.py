"""The simulation's clock for activity stamps: after a skip, the time then plus the wall time
since; during a skip, the latest time a workflow scheduled an activity at; the server asked
only before the first. (The stamps it gives a real run are checked against the simulated
period in tests/integration/test_simulation_clock.py.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from temporalio.testing import WorkflowEnvironment

from workers.simulation.server_clock import ServerClock

T0 = datetime(2031, 3, 3, 9, 0, tzinfo=UTC)


class ServerTime:
    """The one call the clock makes of the environment outside a skip's sleep."""

    def __init__(self) -> None:
        self.now, self.asked = T0, 0

    async def get_current_time(self) -> datetime:
        self.asked += 1
        return self.now


def clock_on(server: ServerTime) -> ServerClock:
    return ServerClock(cast(WorkflowEnvironment, cast(Any, server)))


async def test_before_any_skip_the_server_is_asked() -> None:
    server = ServerTime()
    assert await clock_on(server)() == T0 and server.asked == 1


async def test_in_a_skip_the_latest_noted_workflow_time_is_the_time() -> None:
    server = ServerTime()
    clock = clock_on(server)
    clock.note(T0 + timedelta(hours=2))
    clock.note(T0 + timedelta(hours=1))  # an earlier one never moves it back
    assert await clock() == T0 + timedelta(hours=2)
    assert server.asked == 0


async def test_after_a_skip_the_time_read_then_runs_at_wall_speed_and_notes_are_ignored() -> None:
    server = ServerTime()
    clock = clock_on(server)
    assert await clock.sleep_until(T0) == T0  # already there: no sleep, one read
    clock.note(T0 + timedelta(days=1))  # a stop is not a skip: the read stands
    stamp = await clock()
    assert T0 <= stamp < T0 + timedelta(seconds=5)
    assert server.asked == 1  # the loop's read serves as the time after the skip
