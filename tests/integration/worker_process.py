"""`python -m tests.integration.worker_process`: the production worker (build_worker, its real
activities and settings from the environment) as a process a test can SIGKILL, without the
Schedules that `carebridge worker` creates (the time-skipping test server has none). Its pool
connects lazily, so it also starts while PostgreSQL is away."""

from __future__ import annotations

import asyncio

from store.db import create_pool
from workers.runtime.logs import configure_logging
from workers.runtime.settings import get_settings
from workers.runtime.temporal import connect
from workers.worker import build_worker


async def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    assert settings.database_url, "CAREBRIDGE_DATABASE_URL is required"
    client = await connect(settings)
    pool = await create_pool(
        settings.database_url.get_secret_value(),
        min_size=0,
        max_size=settings.database_pool_size,
        acquire_timeout=settings.database_acquire_timeout_seconds,
    )
    async with build_worker(client, pool, settings):
        print("worker polling", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
