"""The asyncpg connection pool."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from asyncpg.pool import PoolAcquireContext

ACQUIRE_TIMEOUT_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 10.0
STATEMENT_CACHE_SIZE = 100  # asyncpg's default


class BoundedPool(asyncpg.Pool):
    """A pool whose every acquire (also inside `fetch`, `execute`, ...) waits at most
    `acquire_timeout` seconds for a free connection, then raises TimeoutError: a caller in a
    storm fails fast and is retried by its own bounded policy instead of queueing past its
    activity's start-to-close timeout."""

    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        return super().acquire(timeout=self._acquire_timeout if timeout is None else timeout)


async def keep_session(_conn: asyncpg.Connection) -> None:
    """What a connection goes back to the pool with: as it is. asyncpg's default reset sends
    `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every release, a round
    trip per `fetch`/`execute` for session state carebridge never leaves: its advisory locks
    are transaction-scoped (migrate releases its one session lock itself), settings are SET
    LOCAL, and it holds no cursors across transactions and never LISTENs. A transaction left
    open is still rolled back (asyncpg does that before calling this)."""


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    acquire_timeout: float = ACQUIRE_TIMEOUT_SECONDS,
    statement_cache_size: int = STATEMENT_CACHE_SIZE,
    init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """A pool of at most `max_size` connections; `statement_cache_size=0` for PgBouncer in
    transaction pooling, where consecutive statements of a connection can reach different
    server connections (asyncpg then uses unnamed statements, which live for one query).
    `init` runs on each new connection (the round-trip tests count statements with it)."""
    pool = BoundedPool(
        dsn,
        statement_cache_size=statement_cache_size,
        acquire_timeout=acquire_timeout,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        init_size=None,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        loop=None,
        connect=None,
        setup=None,
        init=init,
        reset=keep_session,
        max_inactive_connection_lifetime=300.0,
        timeout=CONNECT_TIMEOUT_SECONDS,
    )
    await pool
    return pool
