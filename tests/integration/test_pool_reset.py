"""store.db's pool gives connections back as they are (no reset query per release, issue 23)
and still never hands out one inside a transaction, on the real embedded PostgreSQL."""

from __future__ import annotations

import asyncpg

from store.db import create_pool


async def test_a_pool_query_is_one_round_trip_with_no_reset_after_it(database_url: str) -> None:
    sent: list[str] = []

    async def init(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda record: sent.append(record.query))

    pool = await create_pool(database_url, max_size=1, init=init)
    try:
        assert await pool.fetchval("SELECT 1") == 1
        assert await pool.fetchval("SELECT 2") == 2
    finally:
        await pool.close()

    assert sent == ["SELECT 1", "SELECT 2"]


async def test_a_connection_given_back_inside_a_transaction_comes_back_rolled_back(
    database_url: str,
) -> None:
    pool = await create_pool(database_url, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE left_open (n int)")
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            exists = await again.fetchval("SELECT to_regclass('pg_temp.left_open')")
    finally:
        await pool.close()

    assert exists is None
