"""What "now" is for a stamp the engine makes about a transition (an inbox row received, a
notification created or delivered, a projection row updated): the wall clock in production,
the simulated time in `carebridge simulate`, so a simulated month reads as if it had passed.

Activities take an async `Clock` (the simulation's asks the time-skipping server for its
time). Local activities cannot use `activity.info().scheduled_time` instead: the SDK stamps a
local activity with the worker's wall clock, only a remote one with the server's time.

Security stamps about real people (web sessions, login codes, API tokens, the audit of who
looked) stay on the wall clock and take no clock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

Clock = Callable[[], Awaitable[datetime]]


async def wall_clock() -> datetime:
    """The production clock: the current time, in UTC."""
    return datetime.now(UTC)
