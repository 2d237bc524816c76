"""The console entry point, `carebridge`: the commands that run a process (up, migrate, worker,
listener, api), then every command group of workers/cli/, which registers itself on the app."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import typer

from workers.cli.app import app, console, run_command, until_signalled

if TYPE_CHECKING:
    from workers.runtime.probes import Probes
    from workers.runtime.services import Services
    from workers.runtime.settings import Settings

# A command imports what it runs (the stack, the worker, the servers) in its own body: the
# CLI starts without loading Temporal, FastAPI or asyncpg, and `--help` answers at once.


@app.command()
def up() -> None:
    """Start the whole stack: Temporal, PostgreSQL, migrations, worker, listener and API."""
    from workers.stack import run_stack

    run_command(lambda settings: run_stack(settings, console))


@app.command()
def migrate(
    grant_to: str | None = typer.Option(
        None,
        help="then give this application role its rights: data, INSERT and SELECT only on "
        "the audit log, no DDL (run as the owner role)",
    ),
) -> None:
    """Apply pending database migrations, then seal inbox messages stored in plaintext by
    earlier versions (idempotent)."""
    from store.db import create_pool
    from store.grants import grant_application_role
    from store.migrate import migrate as apply_migrations
    from workers.runtime import embedded
    from workers.runtime.embedded import StackError
    from workers.runtime.services import field_cipher_for
    from workers.runtime.startup import POSTGRES_TRANSIENT, retrying

    async def main(settings: Settings) -> None:
        cipher = field_cipher_for(settings)
        dsn = await embedded.database_url(settings)
        pool = await retrying(  # an init container may start before the database answers
            "PostgreSQL",
            lambda: create_pool(dsn, max_size=2),
            transient=POSTGRES_TRANSIENT,
            wait_seconds=settings.startup_wait_seconds,
        )
        try:
            applied = await apply_migrations(pool, cipher)
            if grant_to:
                await grant_application_role(pool, grant_to)
        except LookupError as exc:
            raise StackError(str(exc)) from None
        finally:
            await pool.close()
        console.print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")
        if grant_to:
            console.print(f"granted the application rights to {grant_to}")

    run_command(main)


async def require_search_attributes(services: Services, settings: Settings) -> None:
    """A worker on a namespace without carebridge's search attributes would fail every
    workflow task that publishes them: refuse to start, naming them and the fix."""
    from workers.runtime.embedded import StackError
    from workers.runtime.temporal import missing_search_attributes

    missing = await missing_search_attributes(services.client, settings.temporal_namespace)
    if missing:
        raise StackError(
            f"namespace {settings.temporal_namespace} lacks the search attributes "
            f"{', '.join(missing)}: run `carebridge temporal setup` (operator rights) first"
        )


temporal_app = typer.Typer(help="The Temporal namespace carebridge runs in.")
app.add_typer(temporal_app, name="temporal")


@temporal_app.command("setup")
def temporal_setup() -> None:
    """Register carebridge's search attributes in the namespace (idempotent)."""
    from workers.runtime.temporal import connect, ensure_search_attributes

    async def main(settings: Settings) -> list[str]:
        return await ensure_search_attributes(await connect(settings), settings.temporal_namespace)

    added = run_command(main)
    console.print(f"added: {', '.join(added)}" if added else "search attributes are in place")


@contextlib.asynccontextmanager
async def worker_probes(settings: Settings) -> AsyncIterator[Probes | None]:
    """The worker's /healthz and /readyz (CAREBRIDGE_WORKER_HEALTH_PORT), from its start:
    alive while it waits for its dependencies, ready once it polls."""
    from workers.runtime.probes import serving_probes

    if not settings.worker_health_port:
        yield None
        return
    async with serving_probes(
        settings.worker_metrics_host, settings.worker_health_port, settings.worker_stall_seconds
    ) as probes:
        yield probes


async def mark_ready(probes: Probes | None, services: Services, settings: Settings) -> None:
    """Ready once Temporal lists this worker's pollers (in the background: a slow answer
    delays readiness, never the work)."""
    from workers.worker import until_polling

    if probes is None:
        return

    async def when_polling() -> None:
        await until_polling(services.client, settings.task_queue)
        probes.ready = True

    READINESS_TASKS.add(task := asyncio.create_task(when_polling()))
    task.add_done_callback(READINESS_TASKS.discard)


READINESS_TASKS: set[asyncio.Task[None]] = set()


@app.command()
def worker() -> None:
    """Run a Temporal worker (against CAREBRIDGE_TEMPORAL_ADDRESS or the local dev server)."""
    from workers.runtime.schedules import ensure_schedules
    from workers.runtime.services import Services
    from workers.runtime.temporal import metrics_runtime
    from workers.runtime.tracing import configure_tracing, shutdown_tracing
    from workers.worker import build_worker

    async def main(settings: Settings) -> None:
        configure_tracing(settings, "worker")
        runtime = (
            metrics_runtime(settings.worker_metrics_port, settings.worker_metrics_host)
            if settings.worker_metrics_port
            else None
        )
        async with worker_probes(settings) as probes:
            services = await Services.connect(settings, runtime)
            try:
                await require_search_attributes(services, settings)
                await ensure_schedules(services.client, services.library.site, settings.task_queue)
                async with build_worker(services.client, services.pool, settings):
                    console.print(f"worker polling task queue {settings.task_queue}")
                    await mark_ready(probes, services, settings)
                    await until_signalled()
            finally:
                await services.close()
                shutdown_tracing()

    run_command(main)
    # The worker has drained and shut down. Temporal Core's threads can still call into
    # Python while the interpreter finalizes (an intermittent SIGABRT, "PyGILState_Release"),
    # so leave without finalizing: exit code 0 must mean a clean stop.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@app.command()
def listener() -> None:
    """Run the MLLP listener alone."""
    from workers.http_server import listener_health
    from workers.listener import listener_for
    from workers.runtime.services import Services
    from workers.runtime.tracing import configure_tracing

    async def main(settings: Settings) -> None:
        configure_tracing(settings, "listener")
        services = await Services.connect(settings)
        mllp = listener_for(services.intake, settings)
        try:
            await mllp.start(settings.mllp_host, settings.mllp_port)
            console.print(f"MLLP listener on {settings.mllp_host}:{settings.mllp_port}")
            async with listener_health(services, settings):
                await until_signalled()
        finally:
            # graceful: in-flight frames are answered first, for at most the close grace
            await mllp.close(grace_seconds=settings.mllp_close_grace_seconds)
            await services.close()

    run_command(main)


@app.command()
def api() -> None:
    """Run the HTTP API alone."""
    import uvicorn

    from workers.http_server import create_app
    from workers.runtime.logs import configure_logging
    from workers.runtime.settings import get_settings
    from workers.runtime.tracing import configure_tracing

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    configure_tracing(settings, "api")
    uvicorn.run(create_app(), host=settings.api_host, port=settings.api_port, log_config=None)


# The other command groups register themselves on `app` when imported.
from workers.cli import (  # noqa: E402, F401
    care,
    deployment,
    example,
    feed,
    ingest,
    keys,
    replay,
    roster,
    security,
    simulate,
    transitions,
)

if __name__ == "__main__":  # pragma: no cover
    app(prog_name="carebridge")
