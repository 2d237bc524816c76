"""Security commands: API tokens and the audit log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import typer
from rich.table import Table

from workers.cli.app import app, console, err_console, run_command
from workers.cli.audit_trail import audited
from workers.runtime.settings import Settings, get_settings

tokens_app = typer.Typer(help="API tokens: create (shown once), revoke, list.")
audit_app = typer.Typer(help="The audit log: search it, verify its hash chain.")
app.add_typer(tokens_app, name="tokens")
app.add_typer(audit_app, name="audit")
# workers.api.auth.Role without "developer" (in development only); named here, as
# tests/unit/test_cli_start_up.py checks, because importing it would load FastAPI first.
ROLES = ["care_manager", "supervisor", "operator", "integration", "auditor"]
DEVELOPER = "developer"


async def _with_pool(settings: Settings, work: Any) -> Any:
    from store.db import create_pool
    from workers.runtime import embedded

    pool = await create_pool(await embedded.database_url(settings), max_size=2)
    try:
        return await work(pool)
    finally:
        await pool.close()


@tokens_app.command("create")
def tokens_create(
    name: str = typer.Option(..., "--name", help="what the token is for"),
    subject: str = typer.Option(..., "--subject", help="the user or system acting with it"),
    role: str = typer.Option(
        ..., "--role", help=", ".join(ROLES) + "; developer in development only"
    ),
    team: str | None = typer.Option(None, "--team", help="limit a supervisor to a facility"),
    expires_in_days: int = typer.Option(
        90, "--expires-in-days", min=0, help="days until it stops working; 0: never"
    ),
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from store import security

    if role == DEVELOPER and get_settings().environment != "development":
        err_console.print(
            "[red]error:[/] the developer role (the development administrator) exists in "
            "development only: give a production token one of " + ", ".join(ROLES)
        )
        raise typer.Exit(1)
    if role not in (*ROLES, DEVELOPER):
        err_console.print(f"[red]error:[/] unknown role {role!r}: use one of {', '.join(ROLES)}")
        raise typer.Exit(1)
    lifetime = timedelta(days=expires_in_days) if expires_in_days else None

    async def main(settings: Settings) -> tuple[int, str]:
        async with audited(
            settings,
            action=f"tokens create {role} {subject}",
            resource_type="token",
            resource_id=name,
        ) as pool:
            return await security.create_token(
                pool, name=name, subject=subject, role=role, team=team, expires_in=lifetime
            )

    token_id, token = run_command(main)
    console.print(f"token {token_id} for {subject} ({role}); shown once, keep it safe:")
    console.print(token, soft_wrap=True)


@app.command("login-url")
def login_url() -> None:
    """Print a new one-time sign-in URL for the web pages of the running development stack
    (it signs the development administrator in once, within 15 minutes)."""
    from workers.api import dev_access

    async def main(settings: Settings) -> str:
        async def issue(pool: Any) -> str:
            return await dev_access.issue_login_url(pool, settings, by="login-url")

        result: str = await _with_pool(settings, issue)
        return result

    console.print(run_command(main), soft_wrap=True)


@tokens_app.command("revoke")
def tokens_revoke(token_id: int) -> None:
    """Revoke a token now."""
    from store import security

    async def main(settings: Settings) -> bool:
        async with audited(
            settings, action="tokens revoke", resource_type="token", resource_id=str(token_id)
        ) as pool:
            return await security.revoke_token(pool, token_id)

    done = run_command(main)
    if not done:
        err_console.print(f"[red]error:[/] no active token {token_id}")
        raise typer.Exit(1)
    console.print(f"token {token_id} revoked")


@tokens_app.command("list")
def tokens_list() -> None:
    """Every token (never the token itself)."""
    from store import security

    rows = run_command(lambda s: _with_pool(s, security.list_tokens))
    table = Table(title="API tokens")
    for column in ("id", "name", "subject", "role", "team", "created", "expires", "revoked"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["name"],
            row["subject"],
            row["role"],
            row["team"] or "",
            str(row["created_at"])[:19],
            str(row["expires_at"] or "never")[:19],
            str(row["revoked_at"] or "")[:19],
        )
    console.print(table)


@audit_app.command("search")
def audit_search(
    actor: str | None = typer.Option(None),
    resource: str | None = typer.Option(None, help="transition or message id"),
    since: datetime | None = typer.Option(None),
    limit: int = typer.Option(100, min=1, max=1000),
) -> None:
    """Who read or changed what, newest first (JSON lines)."""
    from store import security

    rows = run_command(
        lambda s: _with_pool(
            s,
            lambda pool: security.search(
                pool, actor=actor, resource_id=resource, since=since, limit=limit
            ),
        )
    )
    for row in rows:
        console.print_json(json.dumps(row, default=str), indent=None)


@audit_app.command("verify")
def audit_verify(
    anchor: str | None = typer.Option(
        None, help="an exported anchor ID:HASH (`audit anchor`, or the API's audit.anchor log)"
    ),
) -> None:
    """Recompute the keyed hash chain; exit 1 and say where it breaks. With an anchor, the
    anchored row must be there with its hash (rows deleted from the tail show)."""
    from store import security

    pinned = security.Anchor.parse(anchor) if anchor else None
    result = run_command(
        lambda s: _with_pool(s, lambda pool: security.verify(pool, s.audit_chain_key, pinned))
    )
    if result.broken is not None:
        err_console.print(
            f"[red]audit log tampered:[/] row {result.broken} does not match the chain "
            f"({result.checked} rows before it are intact)"
        )
        raise typer.Exit(1)
    if result.anchor_problem is not None:
        err_console.print(f"[red]audit log tampered:[/] {result.anchor_problem}")
        raise typer.Exit(1)
    console.print(f"audit log intact: {result.checked} rows verified")


@audit_app.command("anchor")
def audit_anchor() -> None:
    """Print the chain's anchor (newest id and hash) to keep outside the database."""
    from store import security

    found = run_command(lambda s: _with_pool(s, security.latest_anchor))
    console.print(str(found) if found else "the audit log is empty")
