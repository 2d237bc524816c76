"""One time-skipping test server for the workflow tests; a fresh worker per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from tests.workflow.support import new_worker, start_time_skipping_env, terminate_started


@pytest_asyncio.fixture(scope="session")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping_env()
    yield env
    await env.shutdown()


@pytest_asyncio.fixture
async def worker(skipping_env: WorkflowEnvironment) -> AsyncIterator[Worker]:
    async with new_worker(skipping_env) as running:
        yield running
        await terminate_started()
