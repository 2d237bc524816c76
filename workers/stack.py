"""`carebridge up`: the whole stack in one process group, stopped cleanly by Ctrl-C / SIGTERM.

Starts (unless configured to use existing servers) the Temporal dev server and the embedded
PostgreSQL, applies migrations, starts the worker(s) as processes, and runs the MLLP listener
and the HTTP API in this process. In development it then prints a one-time sign-in URL for the
web pages and writes the development administrator's API token file (no anonymous access).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal

import structlog
import uvicorn
from rich.console import Console
from temporalio.client import Client

from store import login_codes
from store.db import create_pool
from store.migrate import migrate
from workers.api import dev_access
from workers.api.dev_access import DevelopmentAccess
from workers.http_server import EmbeddedUvicorn, create_app
from workers.listener import listener_for
from workers.runtime import embedded
from workers.runtime.embedded import StackError
from workers.runtime.schedules import ensure_schedules
from workers.runtime.services import Services, field_cipher_for
from workers.runtime.settings import Settings
from workers.runtime.temporal import connect, ensure_search_attributes
from workers.worker import build_worker

log = structlog.get_logger(__name__)
TEMPORAL_START_TIMEOUT = 60.0


async def _wait_for_temporal(
    settings: Settings, process: asyncio.subprocess.Process | None
) -> Client:
    deadline = asyncio.get_running_loop().time() + TEMPORAL_START_TIMEOUT
    while True:
        if process is not None and process.returncode is not None:
            raise StackError(
                f"the Temporal dev server exited with code {process.returncode}; "
                f"see {settings.state_dir / 'temporal.log'}"
            )
        try:
            return await connect(settings)
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise StackError(
                    f"Temporal at {settings.temporal_target} did not answer within "
                    f"{TEMPORAL_START_TIMEOUT:.0f} s"
                ) from None
            await asyncio.sleep(0.3)


def _check_ports(settings: Settings) -> None:
    checks = [
        (settings.api_host, settings.api_port, "HTTP API", "CAREBRIDGE_API_PORT"),
        (settings.mllp_host, settings.mllp_port, "MLLP listener", "CAREBRIDGE_MLLP_PORT"),
    ]
    if not settings.temporal_address:
        checks += [
            (
                "127.0.0.1",
                settings.temporal_port,
                "Temporal dev server",
                "CAREBRIDGE_TEMPORAL_PORT",
            ),
            ("127.0.0.1", settings.temporal_ui_port, "Temporal UI", "CAREBRIDGE_TEMPORAL_UI_PORT"),
        ]
    for host, port, what, setting in checks:
        embedded.ensure_port_free(host, port, what, setting)


def banner(console: Console, settings: Settings, access: DevelopmentAccess | None) -> None:
    """What `up` prints once it serves: where everything is, and how to sign in."""
    temporal_ui = (
        f"http://127.0.0.1:{settings.temporal_ui_port}"
        if not settings.temporal_address
        else f"(external Temporal at {settings.temporal_target})"
    )
    database = (
        "external (CAREBRIDGE_DATABASE_URL)"
        if settings.database_url
        else (f"embedded, data in {settings.state_dir / 'pgdata'}")
    )
    console.print("[bold green]carebridge is up[/]")
    console.print(f"  Temporal UI      {temporal_ui}")
    console.print(f"  HTTP API         {settings.api_url}  (OpenAPI: {settings.api_url}/docs)")
    console.print(f"  MLLP listener    {settings.mllp_host}:{settings.mllp_port}")
    console.print(f"  PostgreSQL       {database}")
    console.print(f"  Codec server     {settings.api_url}/codec  (payloads AES-256-GCM encrypted)")
    bearer = ""
    if access is None:
        console.print("  Authentication   bearer tokens required (carebridge tokens create)")
    else:
        minutes = int(login_codes.CODE_LIFETIME.total_seconds() // 60)
        console.print(
            "  Authentication   required; you are the development administrator (dev-admin)"
        )
        console.print(f"  Web pages        {access.login_url}")
        console.print(
            f"                   (signs you in once, within {minutes} min; "
            "`carebridge login-url` prints a new one)"
        )
        console.print(f"  API token        {access.token_file}  (mode 0600)")
        bearer = f' -H "Authorization: Bearer $(cat {shlex.quote(str(access.token_file))})"'
    console.print("Send a sample discharge:")
    console.print(
        f"  carebridge example a03 | curl -s --data-binary @- "
        f"-H 'Content-Type: x-application/hl7-v2+er7'{bearer} {settings.api_url}/adt"
        " | tr '\\r' '\\n'"
    )
    console.print("  carebridge example a03 | carebridge send -      (over MLLP)")
    console.print("Then: carebridge list, carebridge show <transition-id>.  Ctrl-C stops.")


async def run_stack(settings: Settings, console: Console) -> None:
    console.soft_wrap = True
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    _check_ports(settings)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    temporal_process: asyncio.subprocess.Process | None = None
    worker_processes: list[asyncio.subprocess.Process] = []
    services: Services | None = None
    try:
        if not settings.temporal_address:
            console.print("starting the Temporal dev server ...")
            temporal_process = await embedded.start_temporal_dev_server(settings)
        client = await _wait_for_temporal(settings, temporal_process)
        await ensure_search_attributes(client, settings.temporal_namespace)
        console.print("starting PostgreSQL and applying migrations ...")
        database_url = await embedded.database_url(settings)
        pool = await create_pool(
            database_url,
            max_size=settings.database_pool_size,
            acquire_timeout=settings.database_acquire_timeout_seconds,
        )
        applied = await migrate(pool, field_cipher_for(settings))
        log.info("migrations.applied", versions=applied)
        services = Services.build(settings, pool, client)

        await ensure_schedules(client, services.library.site, settings.task_queue)
        worker_processes = [
            await embedded.start_worker_process(settings, database_url, n)
            for n in range(settings.worker_processes)
        ]
        inline = build_worker(client, pool, settings) if not worker_processes else None
        listener = listener_for(services.intake, settings)
        await listener.start(settings.mllp_host, settings.mllp_port)
        api = EmbeddedUvicorn(
            uvicorn.Config(
                create_app(services),
                host=settings.api_host,
                port=settings.api_port,
                log_config=None,
                lifespan="on",
            )
        )
        async with inline or contextlib.nullcontext():
            api_task = asyncio.create_task(api.serve())
            while not api.started and not api_task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            if api_task.done():
                raise StackError(f"the HTTP API could not start on {settings.api_url}")
            access = (
                await dev_access.prepare(pool, settings)
                if settings.environment == "development"
                else None
            )
            banner(console, settings, access)
            await stop.wait()
            console.print("stopping ...")
            api.should_exit = True
            await listener.close()
            await api_task
    finally:
        for process in worker_processes:  # workers drain before Temporal goes away
            await _stop(process, 30)
        if services is not None:
            await services.close()
        if temporal_process is not None:
            await _stop(temporal_process, 15)
        console.print("stopped.")


async def _stop(process: asyncio.subprocess.Process, grace: float) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        process.kill()
        await process.wait()
