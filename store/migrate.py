"""Ordered SQL migrations from store/migrations, applied once each and recorded.

Each file runs in its own transaction under an advisory lock, so concurrent starters (two
workers, a listener and the API) apply each migration exactly once. Given the field cipher,
the data steps SQL cannot do follow: sealing the inbox rows written in plaintext before 0015
(idempotent, in batches that skip rows another starter is sealing, so no lock is needed).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg
import structlog

from store import inbox
from store.encryption import FieldCipher

log = structlog.get_logger(__name__)

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


async def migrate(pool: asyncpg.Pool, cipher: FieldCipher | None = None) -> list[str]:
    """Apply the migrations not yet recorded, then (given the cipher) the data steps; return
    the versions applied now, and a line per data step that changed rows."""
    async with pool.acquire() as conn:
        applied = await _migrate(conn)
    if cipher is not None:
        applied += await _data_steps(pool, cipher)
    return applied


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


async def _data_steps(pool: asyncpg.Pool, cipher: FieldCipher) -> list[str]:
    done: list[str] = []
    if sealed := await inbox.seal_plaintext(pool, cipher):
        log.info("migrations.inbox_sealed", rows=sealed)
        done.append(f"inbox: {sealed} plaintext message(s) sealed")
    return done


async def schema_problem(pool: asyncpg.Pool, *, accept_newer: bool = False) -> str | None:
    """Why this code must not run on the database's schema, or None: migrations of this
    release the database lacks (behind), or migrations it has that this release does not
    know (ahead: a newer release migrated it). Both are read from the files present."""
    known = [migration.version for migration in available_migrations()]
    applied: set[str] = set()
    if await pool.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        rows = await pool.fetch("SELECT version FROM schema_migrations")
        applied = {row["version"] for row in rows}
    missing = [version for version in known if version not in applied]
    if missing:
        return (
            f"the database schema is behind this release: it lacks {', '.join(missing)}; "
            "run `carebridge migrate` (as the owner role) before starting it"
        )
    unknown = sorted(applied - set(known))
    if unknown and not accept_newer:
        return (
            f"the database schema is ahead of this release: it has {', '.join(unknown)}, "
            "which a newer release applied; deploy that release, or set "
            "CAREBRIDGE_ACCEPT_NEWER_SCHEMA=true to run this one on it (a rollback over "
            "expand-only migrations)"
        )
    return None
