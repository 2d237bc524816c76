"""The time-skipping server's time, for the stamps the run's activities make, without a
round trip for each: 2 ms a call under load, and a month's run stamps tens of thousands of
rows.

Between skips time skipping is locked and the server's clock runs at wall speed (measured:
2.004 s of server time over 2.004 s of wall time), so the time read after a skip plus the
wall time since is the server's time. During a skip the clock jumps as timers fall due, and
each read asks the server."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from temporalio.api.testservice.v1 import SleepRequest
from temporalio.testing import WorkflowEnvironment

MAX_SKIP = timedelta(hours=6)  # one test-server sleep at most (each returns in time)
SLEEP_TIMEOUT = timedelta(seconds=90)  # one step that takes longer: the server is stuck


class ServerClock:
    def __init__(self, env: WorkflowEnvironment) -> None:
        self._env = env
        self._read: tuple[datetime, float] | None = None  # server time, monotonic then
        self._noted: datetime | None = None  # in a skip: the latest workflow time noted

    async def __call__(self) -> datetime:
        if self._read is not None:
            at, then = self._read
            return at + timedelta(seconds=time.monotonic() - then)
        if self._noted is not None:
            return self._noted
        return await self._env.get_current_time()

    def note(self, at: datetime) -> None:
        """A workflow's time as it schedules an activity (during a skip, the server's)."""
        if self._read is None and (self._noted is None or at > self._noted):
            self._noted = at

    async def sleep_until(self, instant: datetime) -> datetime:
        """Skip the server's clock to `instant`, at most MAX_SKIP a call; each call returns
        once the worker has done what fell due in it. Returns the server's time."""
        self._read = None  # until the skip is over (after a failed sleep, reads as in one)
        while (now := await self._env.get_current_time()) < instant:
            self.note(now)
            request = SleepRequest()
            request.duration.FromTimedelta(min(MAX_SKIP, instant - now))
            await self._env.client.test_service.unlock_time_skipping_with_sleep(
                request, timeout=SLEEP_TIMEOUT
            )
        self._read, self._noted = (now, time.monotonic()), None  # the loop's last read
        return now
