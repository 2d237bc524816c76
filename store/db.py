"""The asyncpg connection pool."""

from __future__ import annotations

import asyncpg


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, timeout=10)
    if pool is None:  # only when the pool is created lazily, which we never ask for
        raise RuntimeError("asyncpg returned no pool")
    return pool
