"""Issue 19 item 6: a process starts only on a schema it knows. A database one migration
behind this release (migrations not yet run) or one ahead of it (a newer release migrated
it) is refused at start with one line saying which migrations and what to do; before, the
process started and failed on the first query that touched the missing or changed table."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from store.db import create_pool
from store.migrate import available_migrations, migrate
from tests.helpers import database_dsn
from workers.runtime.embedded import StackError
from workers.runtime.services import Services
from workers.runtime.settings import Settings

NEWER = "9999_from_a_newer_release"


@pytest_asyncio.fixture
async def own_database(
    pool: asyncpg.Pool, settings: Settings, temporal_env: WorkflowEnvironment
) -> AsyncIterator[tuple[asyncpg.Pool, Settings]]:
    """A database of this test's own, migrated by this release, and settings that use it."""
    name = f"schema_{uuid.uuid4().hex[:8]}"
    await pool.execute(f"CREATE DATABASE {name}")
    url = urlunsplit(urlsplit(database_dsn(settings))._replace(path=f"/{name}"))
    mine = settings.model_copy(
        update={
            "database_url": SecretStr(url),
            "temporal_address": temporal_env.client.service_client.config.target_host,
        }
    )
    own = await create_pool(url, max_size=2)
    await migrate(own)
    try:
        yield own, mine
    finally:
        await own.close()
        await pool.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def test_a_database_one_migration_behind_is_refused_naming_it(
    own_database: tuple[asyncpg.Pool, Settings],
) -> None:
    own, mine = own_database
    last = available_migrations()[-1].version  # whatever the newest file is
    await own.execute("DELETE FROM schema_migrations WHERE version = $1", last)
    with pytest.raises(StackError) as refused:
        await Services.connect(mine)
    assert "behind" in str(refused.value) and last in str(refused.value)
    assert "carebridge migrate" in str(refused.value)


async def test_a_database_one_migration_ahead_is_refused_unless_accepted(
    own_database: tuple[asyncpg.Pool, Settings],
) -> None:
    own, mine = own_database
    await own.execute("INSERT INTO schema_migrations (version) VALUES ($1)", NEWER)
    with pytest.raises(StackError) as refused:
        await Services.connect(mine)
    assert "ahead" in str(refused.value) and NEWER in str(refused.value)
    assert "CAREBRIDGE_ACCEPT_NEWER_SCHEMA" in str(refused.value)
    rollback = await Services.connect(mine.model_copy(update={"accept_newer_schema": True}))
    await rollback.close()


async def test_the_schema_this_release_migrated_is_accepted(
    own_database: tuple[asyncpg.Pool, Settings],
) -> None:
    _, mine = own_database
    services = await Services.connect(mine)
    await services.close()
