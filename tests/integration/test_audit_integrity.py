"""The audit log against someone who can write the database (issue 18 item 2): the chain is
keyed, so edited rows cannot be re-hashed into a valid chain without the key; an exported
anchor shows rows deleted from the tail; and the application role, given its rights by
`carebridge migrate --grant-to`, can append and read the log but not change, delete,
truncate, drop or un-trigger it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from typer.testing import CliRunner

from store import security
from store.db import create_pool
from workers.cli.main import app
from workers.runtime.settings import get_settings

KEY = b"k" * 32


async def append(pool: asyncpg.Pool, count: int, actor: str) -> None:
    for n in range(count):
        await security.record(
            pool,
            key=KEY,
            actor=actor,
            role="auditor",
            action=f"GET /audit/{n}",
            resource_type="audit",
            resource_id=None,
            outcome="200",
        )


async def untriggered(pool: asyncpg.Pool, sql: str, *args: Any) -> None:
    """What an owner could do: run a statement with the append-only trigger off."""
    async with pool.acquire() as conn:
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")


def unkeyed_rehash(prev: str, row: dict[str, Any]) -> str:
    fields = ("at", "actor", "role", "action", "resource_type", "resource_id", "patient_key")
    fields += ("source", "outcome")
    body = {k: (row[k].isoformat() if hasattr(row[k], "isoformat") else row[k]) for k in fields}
    material = prev + json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(material.encode()).hexdigest()


def cli(database_url: str, *args: str) -> Any:
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(
            app,
            list(args),
            env={"CAREBRIDGE_DATABASE_URL": database_url, "CAREBRIDGE_AUDIT_KEY": KEY.decode()},
        )
    finally:
        get_settings.cache_clear()


async def test_an_edited_row_cannot_be_rehashed_and_a_deleted_tail_shows_against_the_anchor(
    own_pool: asyncpg.Pool, own_database: str
) -> None:
    pool = own_pool
    actor = f"aud.{uuid.uuid4().hex[:6]}"
    await append(pool, 3, actor)
    anchor = await security.latest_anchor(pool)
    assert anchor is not None and (await security.verify(pool, KEY, anchor)).intact
    rows = [
        dict(r)
        for r in await pool.fetch("SELECT * FROM audit_log WHERE actor = $1 ORDER BY id", actor)
    ]
    # The attacker rewrites the last row and recomputes its hash the only way it can: unkeyed.
    forged = {**rows[-1], "outcome": "403"}
    await untriggered(
        pool,
        "UPDATE audit_log SET outcome = '403', hash = $2, hash_kind = 'sha256' WHERE id = $1",
        rows[-1]["id"],
        unkeyed_rehash(rows[-1]["prev_hash"], forged),
    )
    assert (await security.verify(pool, KEY)).broken == rows[-1]["id"]
    await untriggered(pool, "DELETE FROM audit_log WHERE id = $1", rows[-1]["id"])
    after = await security.verify(pool, KEY, anchor)
    assert after.broken is None  # the shortened chain is consistent in itself ...
    assert after.anchor_problem is not None and "missing" in after.anchor_problem  # ... but
    verified = await asyncio.to_thread(
        cli, own_database, "audit", "verify", "--anchor", str(anchor)
    )
    assert verified.exit_code == 1 and "missing" in verified.output
    printed = await asyncio.to_thread(cli, own_database, "audit", "anchor")
    assert printed.exit_code == 0 and printed.output.strip() == str(
        await security.latest_anchor(pool)
    )


async def test_the_application_role_appends_and_reads_but_cannot_change_the_log(
    own_pool: asyncpg.Pool, own_database: str
) -> None:
    role = f"cb_app_{uuid.uuid4().hex[:6]}"
    await own_pool.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'app-pass'")
    database_url = own_database

    result = await asyncio.to_thread(cli, database_url, "migrate", "--grant-to", role)
    assert result.exit_code == 0, result.output
    assert f"granted the application rights to {role}" in result.output
    as_app = await create_pool(app_dsn(database_url, role), max_size=2)
    try:
        await append(as_app, 1, "app.role")  # the application's own writes work
        assert await as_app.fetchval("SELECT count(*) FROM audit_log") > 0
        await as_app.execute("SELECT count(*) FROM adt_inbox")
        for statement in (
            "UPDATE audit_log SET outcome = '403'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
            "DROP TABLE audit_log",
            "CREATE TABLE sneaky (id int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await as_app.execute(statement)
    finally:
        await as_app.close()


def app_dsn(database_url: str, role: str) -> str:
    """The same database as another role."""
    parts = urlsplit(database_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:app-pass@{host}"))
