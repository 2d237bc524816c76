"""The run's worker, started in this process on the run's task queue with no grace at
shutdown, and killed and replaced by the worker fault (faults.py).

A worker that is to be killed runs without a workflow cache: the time-skipping test server
implements neither the sticky queue's schedule-to-start timeout nor ResetStickyTaskQueue, so
a task waiting on a dead worker's sticky queue would wait forever (the run hangs; measured).
A real server moves it to the normal queue after the sticky timeout
(CAREBRIDGE_WORKER_STICKY_TIMEOUT_SECONDS). Without a cache there is no sticky queue, and the
replacement worker runs with the configured cache.

The run's worker runs the workflow code inline, without the sandbox (workers/worker.py): the
sandbox's checks and the deadlock detector belong to the test suite and the deployed
workers; here they cost a third of a run's wall time (8 days at 40 a day, measured: 155 s
against 100 s without the sandbox), and the detector failed tasks of a CPU-starved run."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from workers.runtime.settings import Settings
from workers.simulation.activity_time import ActivityTimeNoting
from workers.simulation.server_clock import ServerClock
from workers.worker import build_worker


class WorkerSlot:
    def __init__(
        self, client: Client, pool: asyncpg.Pool, settings: Settings, *, clock: ServerClock
    ) -> None:
        self.client = client
        self._clock = clock
        self._pool = pool
        self._settings = settings.model_copy(update={"worker_shutdown_seconds": 0.0})
        self._worker: Worker | None = None
        self._running: asyncio.Task[None] | None = None
        self.started = 0

    @property
    def up(self) -> bool:
        return self._running is not None

    def start(self, *, cached_workflows: int | None = None) -> None:
        settings = self._settings
        if cached_workflows is not None:
            settings = settings.model_copy(update={"worker_cached_workflows": cached_workflows})
        self._worker = build_worker(
            self.client,
            self._pool,
            settings,
            clock=self._clock,
            inline_workflows=True,
            interceptors=[ActivityTimeNoting(self._clock)],
        )
        self._running = asyncio.create_task(self._worker.run())
        self.started += 1

    async def kill(self) -> None:
        """As a crash would: its run cancelled, activities in flight cancelled at once (no
        drain); Temporal gives what it held to the next worker."""
        if self._running is None:
            return
        self._running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._running
        self._worker = self._running = None

    async def stop(self) -> None:
        if self._worker is not None:
            await self._worker.shutdown()
        await self.kill()
