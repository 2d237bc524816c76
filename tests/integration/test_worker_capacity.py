"""A worker's activity slots match its connection pool: a deadline storm cannot start more
activities than there are connections for them (they would queue past their timeouts)."""

from __future__ import annotations

import asyncpg
from temporalio.testing import WorkflowEnvironment

from workers.runtime.services import Services
from workers.runtime.settings import Settings
from workers.worker import build_worker


async def test_activity_slots_follow_the_pool_size(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    address = temporal_env.client.service_client.config.target_host
    mine = settings.model_copy(update={"database_pool_size": 7, "temporal_address": address})
    services = await Services.connect(mine)
    try:
        assert services.pool.get_max_size() == 7
        config = build_worker(temporal_env.client, services.pool, mine).config()
        assert config.get("max_concurrent_activities") == 7
        assert config.get("max_concurrent_local_activities") == 7
    finally:
        await services.close()
