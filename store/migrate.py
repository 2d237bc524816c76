"""Ordered SQL migrations from store/migrations, applied once each and recorded.

Each file runs in its own transaction under an advisory lock, so concurrent starters (two
workers, a listener and the API) apply each migration exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg

_LOCK_KEY = 0x0CA8EB81D6E  # any constant; only carebridge takes it

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str


def available_migrations() -> list[Migration]:
    folder = resources.files("store") / "migrations"
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [Migration(version=f.name.removesuffix(".sql"), sql=f.read_text()) for f in files]


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the migrations not yet recorded; return the versions applied now."""
    async with pool.acquire() as conn:
        return await _migrate(conn)


async def _migrate(conn: Any) -> list[str]:
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in available_migrations():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)", migration.version
                )
            applied_now.append(migration.version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied_now
