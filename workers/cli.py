"""The `carebridge` command line (typer + rich)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import typer
import uvicorn
from rich.console import Console
from rich.table import Table
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.planning import build_plan
from ingest import er7, keys, mapping
from ingest.browser import describe
from ingest.errors import HL7Error
from ingest.protocol_library import ProtocolError, load_library
from ingest.routing import AdtRouter
from schemas.transition import CompleteStepRequest, PlanRequest, TransitionState
from store import inbox, projection, reports
from store.db import create_pool
from store.migrate import migrate as apply_migrations
from workers import embedded
from workers.embedded import StackError
from workers.listener import END_BLOCK, frame, listener_for
from workers.logs import configure_logging
from workers.services import Services
from workers.settings import Settings, get_settings
from workers.stack import run_stack
from workers.temporal import connect
from workers.views import (
    messages_table,
    print_plan,
    print_state,
    protocols_table,
    transitions_table,
)
from workers.worker import build_worker
from workflows.transition import TransitionWorkflow

app = typer.Typer(
    help="carebridge: one durable Temporal workflow per hospital discharge.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Off a terminal (pipes, CI) rich would wrap at 80 columns; transition ids must stay whole.
messages_app = typer.Typer(help="The ADT message browser: list, show, reprocess.")
app.add_typer(messages_app, name="messages")
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


def _run(main: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    """Run a command; a problem the user can fix prints one line and exits 1."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        return asyncio.run(main(settings))
    except (StackError, ProtocolError, HL7Error) as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    except (OSError, RuntimeError, RPCError) as exc:
        err_console.print(f"[red]error:[/] {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


@app.command()
def up() -> None:
    """Start the whole stack: Temporal, PostgreSQL, migrations, worker, listener and API."""
    _run(lambda settings: run_stack(settings, console))


@app.command()
def migrate() -> None:
    """Apply pending database migrations (idempotent)."""

    async def main(settings: Settings) -> None:
        pool = await create_pool(await embedded.database_url(settings))
        try:
            applied = await apply_migrations(pool)
        finally:
            await pool.close()
        console.print(f"applied: {', '.join(applied)}" if applied else "schema is up to date")

    _run(main)


@app.command()
def worker() -> None:
    """Run a Temporal worker (against CAREBRIDGE_TEMPORAL_ADDRESS or the local dev server)."""

    async def main(settings: Settings) -> None:
        services = await Services.connect(settings)
        try:
            async with build_worker(services.client, services.pool, settings):
                console.print(f"worker polling task queue {settings.task_queue}")
                await _until_signalled()
        finally:
            await services.close()

    _run(main)


@app.command()
def listener() -> None:
    """Run the MLLP listener alone."""

    async def main(settings: Settings) -> None:
        services = await Services.connect(settings)
        mllp = listener_for(services.intake, settings)
        try:
            await mllp.start(settings.mllp_host, settings.mllp_port)
            console.print(f"MLLP listener on {settings.mllp_host}:{settings.mllp_port}")
            await _until_signalled()
        finally:
            await mllp.close()
            await services.close()

    _run(main)


@app.command()
def api() -> None:
    """Run the HTTP API alone."""
    from workers.api import create_app

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    uvicorn.run(create_app(), host=settings.api_host, port=settings.api_port, log_config=None)


def _site_zone() -> ZoneInfo:
    return ZoneInfo(load_library(get_settings().protocols_dir).site.calendar.timezone)


@app.command("list")
def list_transitions(
    status: str | None = typer.Option(None, help="active, completed or cancelled"),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table"),
) -> None:
    """List transitions from the projection, most urgent first."""

    async def main(settings: Settings) -> list[dict[str, Any]]:
        pool = await create_pool(await embedded.database_url(settings), max_size=2)
        try:
            return await projection.list_transitions(pool, status=status, limit=limit)
        finally:
            await pool.close()

    rows = _run(main)
    if as_json:
        for row in rows:
            console.print_json(json.dumps(row, default=str), indent=None)
        return
    console.print(transitions_table(rows, _site_zone()))


async def _state(settings: Settings, transition_id: str) -> TransitionState:
    client = await connect(settings)
    handle = client.get_workflow_handle_for(TransitionWorkflow.run, keys.workflow_id(transition_id))
    try:
        return await handle.query(TransitionWorkflow.get_state)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise StackError(f"no transition {transition_id}") from None
        raise


@app.command()
def show(
    transition_id: str,
    as_json: bool = typer.Option(False, "--json", help="the raw state as JSON"),
) -> None:
    """Show one transition's live state (a workflow query)."""
    state = _run(lambda settings: _state(settings, transition_id))
    if as_json:
        console.print_json(state.model_dump_json())
        return
    print_state(console, state)


@app.command()
def complete(
    transition_id: str,
    step: str,
    by: str = typer.Option(..., "--by", help="who completed it"),
    outcome: str = typer.Option("done", "--outcome"),
    note: str | None = typer.Option(None, "--note"),
) -> None:
    """Complete a step (a validated workflow Update)."""

    async def main(settings: Settings) -> None:
        client = await connect(settings)
        handle = client.get_workflow_handle_for(
            TransitionWorkflow.run, keys.workflow_id(transition_id)
        )
        request = CompleteStepRequest(step_id=step, by=by, outcome=outcome, note=note)
        try:
            done = await handle.execute_update(TransitionWorkflow.complete_step, request)
        except WorkflowUpdateFailedError as exc:
            raise StackError(f"rejected: {exc.cause or exc}") from None
        console.print(f"{done.step_id} completed by {done.completed_by} ({done.outcome})")

    _run(main)


@messages_app.command("list")
def messages_list(
    status: str | None = typer.Option(None, help="processed, duplicate, ignored, rejected, ..."),
    type: str | None = typer.Option(None, "--type", help="e.g. A03 or ADT^A03"),
    since: datetime | None = typer.Option(None, help="received at or after (ISO time)"),
    limit: int = typer.Option(50, min=1, max=500),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Inbox messages, newest first."""

    async def main(settings: Settings) -> list[dict[str, Any]]:
        pool = await create_pool(await embedded.database_url(settings), max_size=2)
        try:
            return await inbox.list_messages(
                pool, status=status, message_type=type, since=since, limit=limit
            )
        finally:
            await pool.close()

    rows = _run(main)
    if as_json:
        for row in rows:
            console.print_json(json.dumps(row, default=str), indent=None)
        return
    console.print(messages_table(rows, _site_zone()))


@messages_app.command("show")
def messages_show(message_id: int) -> None:
    """One message: raw, parsed, and what it caused."""

    async def main(settings: Settings) -> dict[str, Any] | None:
        pool = await create_pool(await embedded.database_url(settings), max_size=2)
        try:
            return await inbox.get_message(pool, message_id)
        finally:
            await pool.close()

    row = _run(main)
    if row is None:
        err_console.print(f"[red]error:[/] no message {message_id}")
        raise typer.Exit(1)
    console.print_json(json.dumps(describe(row, _site_zone()), default=str))


@messages_app.command("reprocess")
def messages_reprocess(message_id: int) -> None:
    """Run a stored message again (after a fix); the new row links to the original."""

    async def main(settings: Settings) -> None:
        services = await Services.connect(settings)
        try:
            result = await services.intake.reprocess(message_id)
        except LookupError as exc:
            raise StackError(str(exc)) from None
        finally:
            await services.close()
        console.print(
            f"message {message_id} reprocessed as {result.inbox_id}: {result.code.value} "
            f"({result.status})"
        )

    _run(main)


@app.command()
def report(
    kind: str = typer.Argument(..., help="tcm, trc or readmissions"),
    start: datetime = typer.Option(..., "--from", formats=["%Y-%m-%d"]),
    end: datetime = typer.Option(..., "--to", formats=["%Y-%m-%d"]),
    facility: str | None = typer.Option(None),
    as_csv: bool = typer.Option(False, "--csv", help="rows as CSV on stdout"),
) -> None:
    """TCM, HEDIS TRC or 30-day readmissions for discharges between two dates."""
    if kind not in reports.COLUMNS:
        err_console.print(f"[red]error:[/] unknown report {kind!r}: use tcm, trc or readmissions")
        raise typer.Exit(1)
    chosen: reports.ReportKind = kind

    async def main(settings: Settings) -> dict[str, Any]:
        library = load_library(settings.protocols_dir)
        pool = await create_pool(await embedded.database_url(settings), max_size=2)
        try:
            return await reports.report(pool, library, chosen, start.date(), end.date(), facility)
        finally:
            await pool.close()

    result = _run(main)
    if as_csv:
        sys.stdout.write(reports.to_csv(chosen, result["rows"]))
        return
    table = Table(title=f"{kind} report {result['from']} .. {result['to']}")
    for column in reports.COLUMNS[chosen]:
        table.add_column(column)
    for row in result["rows"]:
        table.add_row(*(str(row[c]) for c in reports.COLUMNS[chosen]))
    console.print(table)
    for key, value in result["summary"].items():
        console.print(f"  {key}: {value}")


@app.command()
def protocols() -> None:
    """List the protocols in the protocol folder (validated) and the site's selection table."""
    try:
        library = load_library(get_settings().protocols_dir)
    except ProtocolError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    console.print(protocols_table(library.all_latest()))
    selection = Table(title="selection (first match wins)")
    for column in ("protocol", "PV1-36 dispositions", "PV1-2 classes"):
        selection.add_column(column)
    for rule in library.site.selection:
        dispositions = "deceased (PID-29/30)" if rule.deceased else ", ".join(rule.dispositions)
        selection.add_row(
            rule.protocol, dispositions or "any", ", ".join(rule.patient_classes) or "any"
        )
    console.print(selection)


@app.command()
def plan(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="an ADT^A03 in ER7"),
    as_json: bool = typer.Option(False, "--json", help="the schedule as JSON"),
) -> None:
    """Print the protocol, risk tier and every due instant for a discharge; starts nothing."""
    raw = file.read_bytes()

    async def main(settings: Settings) -> None:
        library = load_library(settings.protocols_dir)
        event = mapping.to_event(er7.parse(raw), ZoneInfo(library.site.calendar.timezone))
        if event.event_type != "A03" or event.discharged_at is None:
            raise StackError(f"{file} is an {event.event_type}, not a discharge (A03)")
        router = AdtRouter(
            None,
            None,
            library=library,
            key_secret=settings.key_secret.get_secret_value(),
            task_queue=settings.task_queue,
        )
        selection = router.select(event)
        if selection.protocol is None:
            if as_json:
                console.print_json(json.dumps({"protocol": None, "reason": selection.reason}))
            else:
                console.print(selection.reason)
            return
        risk = await router.assess_risk(event)
        schedule = build_plan(
            PlanRequest(
                discharged_at=event.discharged_at,
                protocol=selection.protocol,
                tier=risk.tier,
                calendar=library.site.calendar,
            )
        )
        if as_json:
            body = {
                "protocol": selection.protocol.id,
                "version": selection.protocol.version,
                "reason": selection.reason,
                "discharged_at": event.discharged_at.isoformat(),
                "risk": risk.model_dump(mode="json"),
                "plan": schedule.model_dump(mode="json"),
            }
            console.print_json(json.dumps(body))
        else:
            print_plan(
                console, selection.protocol, selection.reason, risk, schedule, event.discharged_at
            )

    _run(main)


@app.command()
def send(
    files: list[Path] = typer.Argument(..., exists=True, dir_okay=False),
    host: str | None = typer.Option(None, help="listener host (default: CAREBRIDGE_MLLP_HOST)"),
    port: int | None = typer.Option(None, help="listener port (default: CAREBRIDGE_MLLP_PORT)"),
) -> None:
    """Send ER7 files over MLLP and print each ACK code (exit 1 if any is not AA/CA)."""
    settings = get_settings()
    target = (host or settings.mllp_host, port or settings.mllp_port)
    failures = 0
    try:
        with socket.create_connection(target, timeout=30) as sock:
            for path in files:
                sock.sendall(frame(path.read_bytes()))
                reply = b""
                while not reply.endswith(END_BLOCK):
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("listener closed the connection")
                    reply += chunk
                ack = reply.strip(b"\x0b\x1c\r").decode(errors="replace")
                msa = next((s for s in ack.split("\r") if s.startswith("MSA")), "MSA|??")
                code = msa.split(msa[3])[1] if len(msa) > 3 else "??"
                failures += code not in ("AA", "CA")
                console.print(f"{path}: {code}  {msa}")
    except OSError as exc:
        err_console.print(f"[red]error:[/] cannot reach {target[0]}:{target[1]}: {exc}")
        raise typer.Exit(1) from None
    if failures:
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app(prog_name="carebridge")
