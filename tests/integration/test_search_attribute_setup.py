"""A worker checks the namespace's search attributes at start (issue 19 item 9): on a
namespace without them it refuses, naming them and the fix, instead of failing every
workflow task that publishes them; `carebridge temporal setup` registers them."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from tests.conftest import TEST_KEYS
from tests.helpers import database_dsn
from tests.integration.conftest import run_cli
from workers.runtime.embedded import find_binary
from workers.runtime.settings import Settings
from workflows import search_attributes


async def test_a_worker_refuses_a_namespace_without_its_search_attributes_until_setup(
    settings: Settings,
) -> None:
    bare = await WorkflowEnvironment.start_local(dev_server_existing_path=find_binary("temporal"))
    try:
        env = {
            "CAREBRIDGE_TEMPORAL_ADDRESS": bare.client.service_client.config.target_host,
            "CAREBRIDGE_DATABASE_URL": database_dsn(settings),
            "CAREBRIDGE_CODEC_KEYS": TEST_KEYS,
            "CAREBRIDGE_TASK_QUEUE": settings.task_queue,
            "CAREBRIDGE_LOG_LEVEL": "WARNING",
        }
        refused = await run_cli(env, "worker")
        assert refused.exit_code == 1, refused.output
        assert "carebridge temporal setup" in refused.output
        for key in search_attributes.ALL:
            assert key.name in refused.output
        setup = await run_cli(env, "temporal", "setup")
        assert setup.exit_code == 0 and setup.output.startswith("added: "), setup.output
        again = await run_cli(env, "temporal", "setup")
        assert "search attributes are in place" in again.output
    finally:
        await bare.shutdown()
