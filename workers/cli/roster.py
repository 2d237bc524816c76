"""Roster commands: import the attribution roster from CSV, show what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from workers.cli.app import app, console, err_console, run_command
from workers.cli.audit_trail import audited
from workers.runtime.settings import Settings

if TYPE_CHECKING:  # asyncpg and the store are loaded by the command that runs
    from ingest.roster_import import ImportResult
    from store.roster import RosterSummary

roster_app = typer.Typer(help="The attribution roster (site rule attribution: roster | pcp).")
app.add_typer(roster_app, name="roster")


@roster_app.command("import")
def roster_import(
    file: Path = typer.Argument(
        ..., help="CSV: identifier,assigning_authority,practice[,pcp_id][,program]"
    ),
) -> None:
    """Add or update roster rows (rejects listed by line and reason); idempotent."""
    from ingest.roster_import import RosterFileError, import_roster, parse_roster, read_roster

    try:
        parsed = parse_roster(read_roster(file))
    except RosterFileError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None

    async def main(settings: Settings) -> ImportResult:
        async with audited(
            settings, action="roster import", resource_type="roster", resource_id=file.name
        ) as pool:
            return await import_roster(
                pool,
                parsed,
                source_file=file.name,
                key_secret=settings.key_secret.get_secret_value(),
            )

    result = run_command(main)
    if result.rejected:
        table = Table(title=f"{len(result.rejected)} rejected row(s)")
        table.add_column("line", justify="right")
        table.add_column("reason")
        for rejected in result.rejected:
            table.add_row(str(rejected.line), rejected.reason)
        console.print(table)
    counts = result.counts
    console.print(
        f"{result.accepted} row(s) accepted: {counts.inserted} inserted, "
        f"{counts.updated} updated, {counts.unchanged} unchanged; "
        f"{len(result.rejected)} rejected"
    )


@roster_app.command("status")
def roster_status() -> None:
    """How many patients the roster holds, per practice, and the latest import."""
    from store import roster
    from store.db import create_pool
    from workers.runtime import embedded

    async def main(settings: Settings) -> RosterSummary:
        pool = await create_pool(await embedded.database_url(settings), max_size=2)
        try:
            return await roster.summary(pool)
        finally:
            await pool.close()

    summary = run_command(main)
    table = Table(title="roster")
    table.add_column("practice")
    table.add_column("patients", justify="right")
    for practice, patients in summary.by_practice.items():
        table.add_row(practice, str(patients))
    console.print(table)
    latest = (
        f"; last import {summary.last_imported_at:%Y-%m-%d %H:%M} from {summary.last_source_file}"
        if summary.last_imported_at is not None
        else ""
    )
    console.print(f"{summary.total} patient(s) on the roster{latest}")
