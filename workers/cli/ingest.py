"""ADT commands: the message browser, protocols and plans, and an MLLP client."""

from __future__ import annotations

import json
import socket
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import Progress
from rich.table import Table

from schemas.protocol_library import ProtocolError, load_library
from workers.cli.app import app, console, err_console, run_command, site_config, site_zone
from workers.cli.audit_trail import audited
from workers.cli.views import local, messages_table, print_plan, protocols_table
from workers.runtime.settings import Settings, get_settings

if TYPE_CHECKING:  # each command imports what it runs (the CLI starts without them)
    from schemas.maintenance import Redelivery
    from store.inbox_retention import Purge

messages_app = typer.Typer(help="The ADT message browser: list, show, reprocess, purge.")
app.add_typer(messages_app, name="messages")


@messages_app.command("list")
def messages_list(
    status: str | None = typer.Option(
        None,
        help="processed, duplicate, ignored, no_protocol, too_old, pending, rejected, received",
    ),
    type: str | None = typer.Option(None, "--type", help="e.g. A03 or ADT^A03"),
    since: datetime | None = typer.Option(None, help="received at or after (ISO time)"),
    limit: int = typer.Option(50, min=1, max=500),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Inbox messages, newest first."""
    from store import inbox
    from store.db import create_pool
    from workers.runtime import embedded

    async def main(settings: Settings) -> list[dict[str, Any]]:
        pool = await create_pool(await embedded.database_url(settings), max_size=2)
        try:
            return await inbox.list_messages(
                pool, status=status, message_type=type, since=since, limit=limit
            )
        finally:
            await pool.close()

    rows = run_command(main)
    if as_json:
        for row in rows:
            console.print_json(json.dumps(row, default=str), indent=None)
        return
    console.print(messages_table(rows, site_zone()))


@messages_app.command("show")
def messages_show(message_id: int) -> None:
    """One message: raw, parsed, and what it caused."""
    from ingest.browser import describe
    from store import inbox
    from workers.runtime.services import field_cipher_for

    async def main(settings: Settings) -> dict[str, Any] | None:
        async with audited(
            settings,
            action="messages show",
            resource_type="message",
            resource_id=str(message_id),
            changes=False,
        ) as pool:
            return await inbox.get_message(pool, field_cipher_for(settings), message_id)

    row = run_command(main)
    if row is None:
        err_console.print(f"[red]error:[/] no message {message_id}")
        raise typer.Exit(1)
    console.print_json(json.dumps(describe(row, site_config()), default=str))


@messages_app.command("reprocess")
def messages_reprocess(message_id: int) -> None:
    """Run a stored message again (after a fix); the new row links to the original."""
    from store import inbox
    from workers.runtime.embedded import StackError
    from workers.runtime.services import Services

    async def main(settings: Settings) -> None:
        async with audited(
            settings,
            action="messages reprocess",
            resource_type="message",
            resource_id=str(message_id),
        ):
            services = await Services.connect(settings)
            try:
                result = await services.intake.reprocess(message_id)
            except (LookupError, inbox.RawUnavailable) as exc:
                raise StackError(str(exc)) from None
            finally:
                await services.close()
        console.print(
            f"message {message_id} reprocessed as {result.inbox_id}: {result.code.value} "
            f"({result.status})"
        )

    run_command(main)


@messages_app.command("purge")
def messages_purge(
    dry_run: bool = typer.Option(False, "--dry-run", help="count, remove nothing"),
) -> None:
    """Remove the raw bytes retention no longer keeps (CAREBRIDGE_INBOX_RETENTION_DAYS after
    the message's transition closed, or after it was received when it has none); the rows
    keep their metadata, decision and ACK. The nightly sweep does the same in bounded runs."""
    from store.inbox_retention import purge_expired

    days = get_settings().inbox_retention_days

    async def main(settings: Settings) -> Purge:
        async with audited(
            settings,
            action="messages purge" + (" --dry-run" if dry_run else ""),
            resource_type="message",
            resource_id=None,
            changes=not dry_run,
        ) as pool:
            return await purge_expired(
                pool, retention_days=days, now=datetime.now(UTC), dry_run=dry_run, max_batches=None
            )

    purge = run_command(main)
    if dry_run:
        console.print(f"{purge.removed} raw message(s) past retention ({days} days): none removed")
    else:
        console.print(f"removed the raw bytes of {purge.removed} message(s) ({days}-day retention)")


@app.command()
def undelivered(limit: int = typer.Option(100, min=1, max=500)) -> None:
    """E-mails and pages recorded in the outbox that did not go out (refused by the server,
    failed past their retries, or their transport not configured), oldest first, with the
    reason; then the last week's team digests that did not go out."""
    from store import notifications
    from store.db import create_pool
    from workers.runtime import embedded

    async def main(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        pool = await create_pool(await embedded.database_url(settings), max_size=2)
        try:
            return (
                await notifications.undelivered(pool, limit),
                await notifications.undelivered_digests(pool),
            )
        finally:
            await pool.close()

    rows, digests = run_command(main)
    table = Table(title=f"{len(rows)} undelivered notification(s)")
    for column in ("id", "transition", "step", "level", "role", "channel", "recorded", "why"):
        table.add_column(column)
    zone = site_zone()
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["transition_id"],
            row["step_id"],
            str(row["level"]),
            row["role"],
            row["channel"],
            local(row["created_at"], zone),
            row["failure"] or "",
        )
    console.print(table)
    if rows:
        console.print("[dim]carebridge redeliver ID sends one again (same idempotency key)[/]")
    if digests:
        digest_table = Table(title=f"{len(digests)} undelivered digest(s), last 7 days")
        for column in ("team", "day", "why"):
            digest_table.add_column(column)
        for row in digests:
            digest_table.add_row(row["team"], row["day"].isoformat(), row["failure"] or "")
        console.print(digest_table)


@app.command()
def redeliver(notification_id: int = typer.Argument(..., min=1)) -> None:
    """Send one undelivered e-mail or page again (after the receiving side is fixed), with
    its original idempotency key. One already delivered is not sent again."""
    from activities.channels import Channels
    from activities.notifications import RedeliveryBusy
    from activities.notifications import redeliver as redeliver_notification
    from workers.runtime.embedded import StackError

    async def main(settings: Settings) -> Redelivery | None:
        async with audited(
            settings,
            action="redeliver",
            resource_type="notification",
            resource_id=str(notification_id),
        ) as pool:
            try:
                return await redeliver_notification(
                    pool,
                    Channels(settings.channel_settings),
                    site_config().notifications,
                    settings.public_url,
                    notification_id,
                )
            except RedeliveryBusy as exc:
                raise StackError(str(exc)) from None

    result = run_command(main)
    if result is None:
        err_console.print(f"[red]error:[/] no notification {notification_id}")
        raise typer.Exit(1)
    if result.already_delivered:
        console.print(f"notification {notification_id} was already delivered: not sent again")
    elif result.delivered:
        console.print(f"notification {notification_id} delivered")
    else:
        err_console.print(
            f"[red]notification {notification_id} still not delivered:[/] {result.failure}"
        )
        raise typer.Exit(1)


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
    from activities.planning import build_plan
    from ingest import er7, mapping
    from ingest.routing import AdtRouter
    from schemas.transition import PlanRequest
    from workers.runtime.embedded import StackError

    raw = file.read_bytes()

    async def main(settings: Settings) -> None:
        library = load_library(settings.protocols_dir)
        site = library.site
        message = er7.parse(raw, site.character_sets)
        event = mapping.to_event(
            message,
            site.zone_for(mapping.header(message).sending_facility),
            visit_sources=site.visit_number_sources,
        )
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
                calendar=site.calendar_for(event.facility),
            )
        )
        notes = [
            note
            for note in (
                site.facility_note(event.facility),
                router.too_old(event, selection.protocol, datetime.now(UTC)),
            )
            if note
        ]
        if as_json:
            body = {
                "protocol": selection.protocol.id,
                "version": selection.protocol.version,
                "reason": selection.reason,
                "discharged_at": event.discharged_at.isoformat(),
                "risk": risk.model_dump(mode="json"),
                "plan": schedule.model_dump(mode="json"),
                "notes": notes,
            }
            console.print_json(json.dumps(body))
        else:
            print_plan(
                console, selection.protocol, selection.reason, risk, schedule, event.discharged_at
            )
            for note in notes:
                console.print(f"note: {note}")

    run_command(main)


@app.command()
def send(
    # Not exists=True: typer 0.29 checks a Path for "-" after making it a Path, so allow_dash
    # never matches; the files are checked below.
    files: list[Path] = typer.Argument(..., dir_okay=False, help="ER7 files; - reads stdin"),
    host: str | None = typer.Option(None, help="listener host (default: CAREBRIDGE_MLLP_HOST)"),
    port: int | None = typer.Option(None, help="listener port (default: CAREBRIDGE_MLLP_PORT)"),
) -> None:
    """Send ER7 files (- for stdin) over MLLP, one connection, and print each ACK code (exit 1
    if any is not AA/CA). A progress bar shows when there are many messages."""
    from workers.listener import END_BLOCK, frame

    settings = get_settings()
    target = (host or settings.mllp_host, port or settings.mllp_port)
    codes: Counter[str] = Counter()
    missing = [str(path) for path in files if str(path) != "-" and not path.is_file()]
    if missing:
        raise typer.BadParameter(f"not a file: {', '.join(missing)}", param_hint="FILES")
    # Stdin may hold several messages back to back: each starts with a line beginning MSH.
    piped: list[bytes] = []
    if any(str(path) == "-" for path in files):
        for line in typer.get_binary_stream("stdin").read().splitlines(keepends=True):
            if line.startswith(b"MSH") or not piped:
                piped.append(b"")
            piped[-1] += line
        piped = [message for message in piped if message.strip()]
        if not piped:
            err_console.print("[red]error:[/] no message on stdin")
            raise typer.Exit(1)
    messages: list[tuple[str, Path | bytes]] = []
    for path in files:
        if str(path) == "-":
            messages.extend(("stdin", message) for message in piped)
        else:
            messages.append((str(path), path))
    try:
        with (
            socket.create_connection(target, timeout=30) as sock,
            Progress(console=err_console, disable=len(messages) < 10) as progress,
        ):
            task = progress.add_task("sending", total=len(messages))
            for label, source in messages:
                raw = source if isinstance(source, bytes) else source.read_bytes()
                sock.sendall(frame(raw))
                reply = b""
                while not reply.endswith(END_BLOCK):
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("listener closed the connection")
                    reply += chunk
                ack = reply.strip(b"\x0b\x1c\r").decode(errors="replace")
                msa = next((s for s in ack.split("\r") if s.startswith("MSA")), "MSA|??")
                code = msa.split(msa[3])[1] if len(msa) > 3 else "??"
                codes[code] += 1
                console.print(f"{label}: {code}  {msa}")  # stdout; the bar is on stderr
                progress.advance(task)
    except OSError as exc:
        err_console.print(f"[red]error:[/] cannot reach {target[0]}:{target[1]}: {exc}")
        raise typer.Exit(1) from None
    if len(messages) > 1:
        console.print(", ".join(f"{code}: {count}" for code, count in sorted(codes.items())))
    if set(codes) - {"AA", "CA"}:
        raise typer.Exit(1)
