"""The `carebridge` command line (typer + rich): the app and what its commands share."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from schemas.sentences import sentence
from workers.runtime.settings import Settings, get_settings

if TYPE_CHECKING:
    from schemas.site import SiteConfig

app = typer.Typer(
    help="carebridge: one durable Temporal workflow per hospital discharge.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Off a terminal (pipes, CI) rich would wrap at 80 columns; transition ids must stay whole.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")


@app.callback()
def refuse_unsafe_production() -> None:
    """Before any command: a production configuration that must not run stops here, in one
    line (the settings are read again by the command itself)."""
    if problem := get_settings().production_problem():
        err_console.print(f"[red]error:[/] {problem}")
        raise typer.Exit(1)


def run_command(main: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    """Run a command; a problem the user can fix prints one line and exits 1."""
    from temporalio.service import RPCError

    from ingest.errors import HL7Error
    from schemas.protocol_library import ProtocolError
    from workers.runtime.embedded import StackError
    from workers.runtime.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        return asyncio.run(main(settings))
    except (StackError, ProtocolError, HL7Error) as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    except (OSError, RuntimeError, RPCError) as exc:
        err_console.print(f"[red]error:[/] {sentence(str(exc))}")
        raise typer.Exit(1) from None


async def until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def site_config() -> SiteConfig:
    """The site table (site.yaml) of the protocol folder the settings name."""
    from schemas.protocol_library import load_library

    return load_library(get_settings().protocols_dir).site


def site_zone() -> ZoneInfo:
    return site_config().calendar_zone()
