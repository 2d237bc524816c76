"""Issue 19 item 3: each process's pool follows its settings (size, acquire timeout, and the
statement cache that PgBouncer's transaction pooling needs off)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from workers.runtime.services import open_pool
from workers.runtime.settings import Settings


async def prepared_statements_after_two_queries(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as connection:
        for _ in range(2):
            await connection.fetchval("SELECT $1::int + 1", 1)
        count: int = await connection.fetchval("SELECT count(*) FROM pg_prepared_statements")
        return count


async def test_the_pool_holds_as_many_connections_as_set_and_waits_as_long(
    settings: Settings,
) -> None:
    mine = settings.model_copy(
        update={"database_pool_size": 3, "database_acquire_timeout_seconds": 0.3}
    )
    pool = await open_pool(mine)
    try:
        assert pool.get_max_size() == 3
        held = [await pool.acquire() for _ in range(3)]
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout=10)
        assert asyncio.get_running_loop().time() - started < 3
        for connection in held:
            await pool.release(connection)
    finally:
        await pool.close()


async def test_statement_cache_off_leaves_no_named_statement_on_the_server(
    settings: Settings,
) -> None:
    """Named prepared statements outlive the transaction, which PgBouncer in transaction
    pooling cannot follow ("prepared statement does not exist"); with the cache at 0 asyncpg
    prepares unnamed ones only."""
    cached = await open_pool(settings)
    uncached = await open_pool(settings.model_copy(update={"database_statement_cache_size": 0}))
    try:
        assert await prepared_statements_after_two_queries(cached) >= 1
        assert await prepared_statements_after_two_queries(uncached) == 0
    finally:
        await cached.close()
        await uncached.close()
