"""A running carebridge (worker, API, MLLP listener) on the real dev server and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest_asyncio
import uvicorn
import yaml
from aiosmtpd.controller import Controller
from fastapi import FastAPI, Request, Response
from pydantic import SecretStr
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner, Result

from schemas import keys
from store import login_codes, security
from store.db import create_pool
from store.migrate import migrate
from tests.conftest import TEST_KEYS
from tests.helpers import MllpClient, a03, assert_eventually, database_dsn, find_free_port, msa
from workers.api.dev_access import DEV_ADMIN
from workers.cli.main import app
from workers.http_server import EmbeddedUvicorn, create_app
from workers.listener import MllpListener, listener_for
from workers.runtime import embedded
from workers.runtime.services import Services
from workers.runtime.settings import Settings, get_settings
from workers.runtime.temporal import connect, ensure_search_attributes
from workers.worker import build_worker


@dataclass
class RunningStack:
    """`http` calls the API as the development administrator (a developer-role token: every
    route admits it); `anonymous` calls it without credentials."""

    services: Services
    http: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    mllp_port: int

    async def post_adt(self, raw: bytes) -> httpx.Response:
        return await self.http.post(
            "/adt", content=raw, headers={"Content-Type": "x-application/hl7-v2+er7"}
        )

    async def as_person(
        self, subject: str, role: str = "developer", team: str | None = None
    ) -> dict[str, str]:
        """Headers that call the API as `subject` (a fresh token of that role): actions are
        recorded under the credential's subject, whatever the body says."""
        return await bearer(self.services.pool, subject, role, team)

    async def login_url(
        self, subject: str = DEV_ADMIN, role: str = "developer", team: str | None = None
    ) -> str:
        """A one-time sign-in URL (as `carebridge up` prints) that opens a session for
        `subject` in a browser."""
        code = await login_codes.issue_code(
            self.services.pool, subject=subject, role=role, team=team
        )
        return f"{str(self.http.base_url).rstrip('/')}/login?code={code}"


async def bearer(
    pool: asyncpg.Pool, subject: str, role: str = "developer", team: str | None = None
) -> dict[str, str]:
    """The Authorization header of a new API token for `subject` with `role`."""
    _, token = await security.create_token(
        pool, name=f"test {subject}", subject=subject, role=role, team=team
    )
    return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture
async def stack(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> AsyncIterator[RunningStack]:
    api_port, mllp_port = find_free_port(), find_free_port()
    services = Services.build(settings, pool, temporal_env.client)
    listener, _ = await start_listener(services, settings, mllp_port)
    api = EmbeddedUvicorn(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=api_port, log_config=None)
    )
    admin = await bearer(pool, DEV_ADMIN)
    base_url = f"http://127.0.0.1:{api_port}"
    async with build_worker(temporal_env.client, pool, settings):
        serving = asyncio.create_task(api.serve())
        while not api.started:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=30, headers=admin) as http,
            httpx.AsyncClient(base_url=base_url, timeout=30) as anonymous,
        ):
            yield RunningStack(services, http, anonymous, mllp_port)
        api.should_exit = True
        await serving
    await listener.close()


@pytest_asyncio.fixture
async def own_database(pool: asyncpg.Pool, database_url: str) -> AsyncIterator[str]:
    """A database of this test's own on the same server, migrated: for a test that changes
    what the other tests read whole (the audit chain, every row's key)."""
    name = f"own_{uuid.uuid4().hex[:8]}"
    await pool.execute(f"CREATE DATABASE {name}")
    parts = urlsplit(database_url)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    own = await create_pool(url, max_size=2)
    try:
        await migrate(own)
    finally:
        await own.close()
    yield url


@pytest_asyncio.fixture
async def own_pool(own_database: str) -> AsyncIterator[asyncpg.Pool]:
    own = await create_pool(own_database, max_size=4)
    yield own
    await own.close()


@pytest_asyncio.fixture
async def own_temporal(tmp_path: Path, settings: Settings) -> AsyncIterator[Settings]:
    """A dev server of this test's own, with a persistent database, that the test can stop."""
    mine = settings.model_copy(
        update={
            "state_dir": tmp_path,
            "temporal_port": find_free_port(),
            "temporal_ui_port": find_free_port(),
            "ack_timeout_seconds": 3.0,
        }
    )
    yield mine


async def start_server(settings: Settings) -> tuple[asyncio.subprocess.Process, Client]:
    """A dev server of these settings, up within 60 s (a restart on its own database file can
    take a while on a loaded 2-core machine)."""
    process = await embedded.start_temporal_dev_server(settings)
    deadline = asyncio.get_running_loop().time() + 60
    while asyncio.get_running_loop().time() < deadline:
        try:
            client = await connect(settings)
            await ensure_search_attributes(client, settings.temporal_namespace)
            return process, client
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError("dev server did not start within 60 s")


async def stop_server(process: asyncio.subprocess.Process) -> None:
    process.terminate()
    await process.wait()


def carebridge_process(
    command: str,
    temporal: WorkflowEnvironment | str,
    settings: Settings,
    *,
    log_path: Path | None = None,
    **extra: str,
) -> subprocess.Popen[bytes]:
    """A `carebridge <command>` process against a Temporal server (the session's environment
    or a host:port) and the settings' database; its output goes to `log_path` (else a
    temporary file)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    address = (
        temporal if isinstance(temporal, str) else temporal.client.service_client.config.target_host
    )
    env.update(
        CAREBRIDGE_TEMPORAL_ADDRESS=address,
        CAREBRIDGE_DATABASE_URL=database_dsn(settings),
        CAREBRIDGE_TASK_QUEUE=settings.task_queue,
        CAREBRIDGE_CODEC_KEYS=TEST_KEYS,
        CAREBRIDGE_LOG_LEVEL="WARNING",
        **extra,
    )
    log = log_path or Path(tempfile.mkdtemp(prefix="cb-proc-")) / f"{command}.log"
    with log.open("wb") as output:  # kept for a failing test's post-mortem
        return subprocess.Popen(
            [embedded.find_binary("carebridge"), command],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


async def start_listener(
    services: Services, settings: Settings, port: int | None = None
) -> tuple[MllpListener, int]:
    """An MLLP listener of these services on 127.0.0.1 (a free port unless given)."""
    port = port or find_free_port()
    listener = listener_for(services.intake, settings)
    await listener.start("127.0.0.1", port)
    return listener, port


async def run_cli(env: dict[str, str], *args: str) -> Result:
    """Run the CLI in a thread: it has its own event loop; the stack's keeps running."""

    def invoke() -> Result:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args), env=env)
        finally:
            get_settings.cache_clear()

    return await asyncio.to_thread(invoke)


def simulate_env(settings: Settings, state_dir: Path) -> dict[str, str]:
    """The environment `carebridge simulate` runs with in these tests: the suite's PostgreSQL
    (a fresh database of its own each run) and codec keys, its state in `state_dir`."""
    return {
        "CAREBRIDGE_DATABASE_URL": database_dsn(settings),
        "CAREBRIDGE_CODEC_KEYS": TEST_KEYS,
        "CAREBRIDGE_STATE_DIR": str(state_dir),
    }


async def discharged_and_planned(
    http: httpx.AsyncClient,
    settings: Settings,
    facility: str,
    *,
    adt_headers: dict[str, str] | None = None,
    read_headers: dict[str, str] | None = None,
) -> str:
    """POST an A03 for a fresh visit of `facility`, wait until its transition is planned
    (read with `read_headers`), and return the transition id."""
    visit = f"V{uuid.uuid4().hex[:8]}"
    answer = await http.post(
        "/adt",
        content=a03(facility=facility, visit=visit),
        headers={"Content-Type": "x-application/hl7-v2+er7", **(adt_headers or {})},
    )
    assert "|AA|" in answer.text, answer.text
    secret = settings.key_secret.get_secret_value()
    tid = keys.transition_id(keys.encounter_key(secret, facility, visit))

    async def planned() -> None:
        state = await http.get(f"/transitions/{tid}", headers=read_headers or {})
        assert state.status_code == 200 and state.json()["period_ends_at"]

    await assert_eventually(planned)
    return tid


async def resend_until_aa(client: MllpClient, raw: bytes, attempts: int = 60) -> int:
    """What a sender does with a message not acknowledged AA: resend it (0.25 s apart) until
    it is. Returns how many answers were not AA."""
    ack = ""
    for refused in range(attempts):
        ack = await client.exchange(raw)
        if msa(ack)[1] == "AA":
            return refused
        await asyncio.sleep(0.25)
    raise AssertionError(f"no AA after {attempts} attempts: {ack}")


async def wait_for_pollers(client: Client, task_queue: str, count: int = 1) -> None:
    """Until `count` distinct workers poll the task queue (a worker process is up)."""

    async def polling() -> None:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        assert len({poller.identity for poller in response.pollers}) >= count

    await assert_eventually(polling, within=60, interval=0.5)


async def assert_projected(pool: asyncpg.Pool, facility: str, count: int, within: float) -> None:
    """Eventually `count` transitions of the facility in the projection, each planned."""

    async def check() -> None:
        rows = await pool.fetch("SELECT steps FROM transitions WHERE facility = $1", facility)
        assert len(rows) == count and all(row["steps"] != "[]" for row in rows)

    await assert_eventually(check, within=within, interval=0.5)


async def assert_exactly_once(
    pool: asyncpg.Pool, client: Client, facility: str, count: int
) -> None:
    """Each message stored once, each transition started once: nothing lost, nothing doubled."""
    inbox = await pool.fetch(
        "SELECT control_id, count(*) AS n FROM adt_inbox WHERE sending_facility = $1 "
        "GROUP BY control_id",
        facility,
    )
    assert len(inbox) == count and all(row["n"] == 1 for row in inbox)
    workflows = [
        wf.id
        async for wf in client.list_workflows(
            f"WorkflowType = 'TransitionWorkflow' AND CbFacility = '{facility}'"
        )
    ]
    assert len(workflows) == len(set(workflows)) == count


async def assert_settled_and_consistent(
    pool: asyncpg.Pool, client: Client, facility: str, within: float = 60
) -> None:
    """Nothing stuck: no inbox row of the facility is left unanswered, and the projection's
    active transitions are exactly Temporal's running workflows (same ids, same count)."""
    unsettled = await pool.fetchval(
        "SELECT count(*) FROM adt_inbox WHERE sending_facility = $1 AND status = 'received'",
        facility,
    )
    assert unsettled == 0

    async def same_open_set() -> None:
        running = {
            wf.id
            async for wf in client.list_workflows(
                f"WorkflowType = 'TransitionWorkflow' AND CbFacility = '{facility}' "
                "AND ExecutionStatus = 'Running'"
            )
        }
        projected = {
            keys.workflow_id(row["transition_id"])
            for row in await pool.fetch(
                "SELECT transition_id FROM transitions WHERE facility = $1 AND status = 'active'",
                facility,
            )
        }
        assert running and running == projected

    await assert_eventually(same_open_set, within=within, interval=0.5)


WEBHOOK_SECRET = "webhook-test-secret"
SHIPPED_PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"


@dataclass
class Mailbox:
    """A local SMTP server's handler: every message it was given. A recipient in `busy`
    is answered 450 (try again later) and gets nothing."""

    messages: list[Message] = field(default_factory=list)
    busy: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.busy:
            return "450 4.2.1 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@dataclass
class Hooks:
    """A local webhook receiver's calls; the first one answers 503 unless told otherwise, the
    others `status`."""

    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # the status each call got
    fail_first: bool = True
    status: int = 204  # what every other call is answered


def copy_protocols(tmp_path: Path, edit_site: Callable[[dict[str, Any]], None]) -> Path:
    """The shipped protocols folder, copied, with its site.yaml changed by `edit_site`."""
    protocols = tmp_path / "protocols"
    shutil.copytree(SHIPPED_PROTOCOLS, protocols)
    site = yaml.safe_load((protocols / "site.yaml").read_text())
    edit_site(site)
    (protocols / "site.yaml").write_text(yaml.safe_dump(site))
    return protocols


@asynccontextmanager
async def channel_receivers(settings: Settings) -> AsyncIterator[tuple[Settings, Mailbox, Hooks]]:
    """A local SMTP server and webhook receiver, and the settings that deliver to them (what
    they were given is in the Mailbox and the Hooks)."""
    mailbox, hooks = Mailbox(), Hooks()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=find_free_port())
    smtp.start()
    receiver = FastAPI()

    @receiver.post("/hook")
    async def hook(request: Request) -> Response:
        status = 503 if hooks.fail_first and not hooks.calls else hooks.status
        hooks.calls.append((dict(request.headers), await request.body()))
        hooks.answers.append(status)
        return Response(status_code=status)

    hook_port = find_free_port()
    server = EmbeddedUvicorn(
        uvicorn.Config(receiver, host="127.0.0.1", port=hook_port, log_config=None)
    )
    serving = asyncio.create_task(server.serve())
    mine = settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "webhook_url": f"http://127.0.0.1:{hook_port}/hook",
            "webhook_secret": SecretStr(WEBHOOK_SECRET),
        }
    )
    try:
        yield mine, mailbox, hooks
    finally:
        server.should_exit = True
        await serving
        smtp.stop()


@asynccontextmanager
async def worker_with_channels(
    client: Client, pool: asyncpg.Pool, settings: Settings, protocols: Path
) -> AsyncIterator[tuple[Services, Mailbox, Hooks]]:
    """A worker on these protocols whose e-mail and webhook channels deliver to a local SMTP
    server and webhook receiver (what they were given is in the Mailbox and the Hooks)."""
    async with channel_receivers(settings) as (mine, mailbox, hooks):
        mine = mine.model_copy(update={"protocols_dir": protocols})
        async with build_worker(client, pool, mine):
            yield Services.build(mine, pool, client), mailbox, hooks
