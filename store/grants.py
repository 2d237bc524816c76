"""The application role's rights, given by the owner role after migrations: data in every
table, but only INSERT and SELECT on the audit log, and no DDL anywhere. The application
(api, worker, listener) runs as that role, so it cannot alter, disable or drop the audit
log's append-only trigger, nor the table: only the owner (the migration Job) can."""

from __future__ import annotations

import asyncpg

APPEND_ONLY = ("audit_log",)
READ_ONLY = ("schema_migrations",)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def grant_application_role(pool: asyncpg.Pool, role: str) -> None:
    """Idempotent; run by the owner after `migrate` (carebridge migrate --grant-to ROLE)."""
    quoted = _quote_ident(role)
    async with pool.acquire() as conn, conn.transaction():
        exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
        if not exists:
            raise LookupError(f"no database role {role!r}: create it first (LOGIN, no CREATE)")
        await conn.execute(f"GRANT USAGE ON SCHEMA public TO {quoted}")
        await conn.execute(f"REVOKE CREATE ON SCHEMA public FROM {quoted}")
        await conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}"
        )
        for table in (*APPEND_ONLY, *READ_ONLY):
            await conn.execute(f"REVOKE ALL ON {_quote_ident(table)} FROM {quoted}")
            await conn.execute(f"GRANT SELECT ON {_quote_ident(table)} TO {quoted}")
        for table in APPEND_ONLY:
            await conn.execute(f"GRANT INSERT ON {_quote_ident(table)} TO {quoted}")
        await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}")
