"""Issue 19 item 5: a worker process turns ready only once its pollers are on the task
queue, and serves liveness while it waits for its dependencies."""

from __future__ import annotations

import asyncio
import signal
import urllib.error
import urllib.request

import asyncpg
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from tests.helpers import assert_eventually, database_dsn, find_free_port
from tests.integration.conftest import carebridge_process, wait_for_pollers
from tests.integration.tcp_proxy import TcpProxy
from workers.runtime.settings import Settings


def status_of(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code
    except OSError:
        return 0  # not listening yet


async def test_a_worker_is_ready_once_it_polls_and_not_before(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    database = TcpProxy.for_url(database_dsn(settings))
    await database.start()
    database.cut()  # it waits at start: alive, not ready
    through = settings.model_copy(
        update={"database_url": SecretStr(database.url_through(database_dsn(settings)))}
    )
    port = find_free_port()
    worker = carebridge_process(
        "worker", temporal_env, through, CAREBRIDGE_WORKER_HEALTH_PORT=str(port)
    )
    try:

        async def alive() -> None:
            assert await asyncio.to_thread(status_of, port, "/healthz") == 200

        await assert_eventually(alive, within=30, interval=0.2)
        assert await asyncio.to_thread(status_of, port, "/readyz") == 503
        database.restore()

        async def ready() -> None:
            assert await asyncio.to_thread(status_of, port, "/readyz") == 200

        await assert_eventually(ready, within=60, interval=0.2)
        # ready means polling: the task queue lists it already
        await wait_for_pollers(temporal_env.client, settings.task_queue)
        assert await asyncio.to_thread(status_of, port, "/healthz") == 200
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 45) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        await database.close()
