"""A pool whose connections are all busy: a caller fails after the acquire timeout instead of
queueing past its activity's start-to-close timeout."""

from __future__ import annotations

import asyncio
import time

import pytest

from store.db import create_pool


async def test_a_busy_pool_refuses_a_caller_after_its_acquire_timeout(database_url: str) -> None:
    pool = await create_pool(database_url, min_size=1, max_size=2, acquire_timeout=0.5)
    try:
        held = [await pool.acquire() for _ in range(2)]
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            # bounded here only so a regression fails rather than hangs
            await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout=10)
        waited = time.monotonic() - started
        assert 0.4 < waited < 5, waited
        await pool.release(held.pop())
        assert await pool.fetchval("SELECT 1") == 1  # a connection freed is taken at once
        for connection in held:
            await pool.release(connection)
    finally:
        await pool.close()
