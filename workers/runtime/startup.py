"""Start-up that outlasts a dependency's outage: a process retries its first connection to
PostgreSQL and to Temporal with a bounded backoff, logging each wait, instead of exiting at
once (which made every pod crash-loop after a failover or a Temporal restart, and the
kubelet's back-off then kept them down minutes after the dependency was back)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import structlog

from workers.runtime.embedded import StackError

T = TypeVar("T")
log = structlog.get_logger(__name__)

FIRST_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 15.0

# Failures that end when the dependency is back: refused or reset connections, timeouts, a
# server still starting or full. A wrong password or database name does not go away: those
# fail at once.
POSTGRES_TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)


class TemporalUnreachable(StackError):
    """The Temporal frontend did not answer (a transport failure, not a configuration one)."""


async def retrying(
    dependency: str,
    attempt: Callable[[], Awaitable[T]],
    *,
    transient: tuple[type[BaseException], ...],
    wait_seconds: float,
    first_delay: float = FIRST_DELAY_SECONDS,
    max_delay: float = MAX_DELAY_SECONDS,
) -> T:
    """`attempt()` until it succeeds, sleeping first_delay, twice that, ... up to max_delay
    between tries, for at most `wait_seconds` in all (0: one try); then a StackError that
    names the dependency. Each wait is logged (the failure's type, never its text: a DSN
    may be in it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    delay = first_delay
    tries = 0
    while True:
        tries += 1
        try:
            return await attempt()
        except transient as exc:
            left = deadline - loop.time()
            if left <= 0:
                if wait_seconds <= 0:
                    raise
                raise StackError(
                    f"{dependency} did not answer within {wait_seconds:.0f} s of start-up "
                    f"({tries} tries, last: {type(exc).__name__}); see the log's "
                    "startup.waiting lines"
                ) from exc
            pause = min(delay, max_delay, left)
            log.warning(
                "startup.waiting",
                dependency=dependency,
                attempt=tries,
                retry_in_seconds=round(pause, 2),
                error_type=type(exc).__name__,
            )
            await asyncio.sleep(pause)
            delay = min(delay * 2, max_delay)
