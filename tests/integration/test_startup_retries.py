"""Issue 19 item 1, start-up: a process started while PostgreSQL and Temporal are away waits
for them (bounded backoff, each wait logged) and comes up when they return, without a
restart; before, it exited at once and its pod crash-looped. Once up, a PostgreSQL outage
is answered (AR/AE, which senders retry), never a refused connection, and the listener is
ready and accepting again when the database is back."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import httpx
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from tests.helpers import MllpClient, a03, assert_eventually, database_dsn, find_free_port, msa
from tests.integration.conftest import carebridge_process, resend_until_aa
from tests.integration.tcp_proxy import TcpProxy
from workers.runtime.settings import Settings


def lines_of(log: Path) -> list[str]:
    return log.read_text(errors="replace").splitlines() if log.exists() else []


async def logged_wait_for(log: Path, dependency: str) -> None:
    async def waiting() -> None:
        lines = lines_of(log)
        assert any("startup.waiting" in line and dependency in line for line in lines), lines

    await assert_eventually(waiting, within=30, interval=0.2)


async def readiness(health_port: int) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{health_port}", timeout=10) as http:
        answer = await http.get("/readyz")
    assert answer.status_code == 200, answer.text
    body: dict[str, str] = answer.json()
    return body


async def test_a_listener_started_with_its_dependencies_away_comes_up_when_they_return(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    database = TcpProxy.for_url(database_dsn(settings))
    host, port = temporal_env.client.service_client.config.target_host.rsplit(":", 1)
    temporal = TcpProxy(host, int(port))
    await database.start()
    await temporal.start()
    database.cut()
    temporal.cut()
    through = settings.model_copy(
        update={"database_url": SecretStr(database.url_through(database_dsn(settings)))}
    )
    mllp_port, health_port = find_free_port(), find_free_port()
    log = tmp_path / "listener.log"
    listener = carebridge_process(
        "listener",
        f"127.0.0.1:{temporal.port}",
        through,
        log_path=log,
        CAREBRIDGE_MLLP_PORT=str(mllp_port),
        CAREBRIDGE_LISTENER_HEALTH_PORT=str(health_port),
        CAREBRIDGE_ACK_TIMEOUT_SECONDS="3",
    )
    try:
        await logged_wait_for(log, "PostgreSQL")
        assert listener.poll() is None, lines_of(log)
        database.restore()
        await logged_wait_for(log, "Temporal")
        assert listener.poll() is None, lines_of(log)
        temporal.restore()

        async def ready() -> None:
            try:
                assert await readiness(health_port) == {
                    "status": "ready",
                    "postgres": "ok",
                    "temporal": "ok",
                }
            except httpx.HTTPError as exc:
                raise AssertionError(str(exc)) from exc

        await assert_eventually(ready, within=60, interval=0.5)
        sender = await MllpClient.connect(mllp_port)
        assert msa(await sender.exchange(a03(control_id="UP-1")))[1] == "AA"

        database.cut()  # away while it runs: an answer to retry, and still ready
        assert msa(await sender.exchange(a03(control_id="DOWN-1")))[1] in {"AE", "AR"}
        down = await readiness(health_port)
        assert down["postgres"] != "ok" and down["temporal"] == "ok"
        database.restore()
        await resend_until_aa(sender, a03(control_id="DOWN-1"))
        assert (await readiness(health_port))["postgres"] == "ok"
        await sender.close()
        listener.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(listener.wait, 45) == 0  # the proxies keep running
    finally:
        if listener.poll() is None:
            listener.kill()
        await database.close()
        await temporal.close()


async def test_start_up_gives_up_naming_the_dependency_after_its_wait(
    settings: Settings, tmp_path: Path
) -> None:
    """Bounded: past CAREBRIDGE_STARTUP_WAIT_SECONDS the process exits 1 with one line."""
    database = TcpProxy.for_url(database_dsn(settings))
    await database.start()
    database.cut()
    through = settings.model_copy(
        update={"database_url": SecretStr(database.url_through(database_dsn(settings)))}
    )
    log = tmp_path / "worker.log"
    worker = carebridge_process(
        "worker",
        "127.0.0.1:1",
        through,
        log_path=log,
        CAREBRIDGE_STARTUP_WAIT_SECONDS="2",
    )
    try:
        assert await asyncio.to_thread(worker.wait, 30) == 1
        output = "\n".join(lines_of(log))
        assert "PostgreSQL did not answer within 2 s of start-up" in output, output
        assert output.count("startup.waiting") >= 2, output
    finally:
        if worker.poll() is None:
            worker.kill()
        await database.close()
