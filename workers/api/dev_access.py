"""Development access without anonymous access: `carebridge up` gives the development
administrator (subject `dev-admin`, role developer: admitted wherever any role is, refused in
production) an API token in `<state dir>/dev-token` (mode 0600, reused while it works) and a
one-time sign-in URL for the web pages; `carebridge login-url` prints another URL.

Each token and code issued here gets its audit rows, like the CLI's `tokens create`."""

from __future__ import annotations

import contextlib
import getpass
import os
import secrets
import socket
import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from store import login_codes, security
from workers.api.auth import Role
from workers.runtime.embedded import StackError
from workers.runtime.settings import Settings

DEV_ADMIN = "dev-admin"
TOKEN_FILE = "dev-token"


@dataclass(frozen=True)
class DevelopmentAccess:
    token_file: Path
    login_url: str


def token_path(settings: Settings) -> Path:
    return settings.state_dir / TOKEN_FILE


def _private(path: Path) -> bool:
    return not path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)


def read_dev_token(settings: Settings) -> str | None:
    """The token in the dev-token file, or None when there is none (or others may read it:
    then it counts as leaked)."""
    path = token_path(settings)
    try:
        text = path.read_text().strip()
        private = _private(path)
    except FileNotFoundError:
        return None
    return text if text and private else None


def _refuse_in_production(settings: Settings, what: str) -> None:
    if settings.environment != "development":
        raise StackError(
            f"{what} is for development only: in production, people sign in with a token "
            "from `carebridge tokens create` or through your organisation's sign-in (OIDC)"
        )


def _write_private(path: Path, text: str) -> None:
    """Write the file created 0600 from the start (never readable by others, not even for
    an instant), replacing any earlier one in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text + "\n")
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


@contextlib.asynccontextmanager
async def _audited(
    pool: asyncpg.Pool, settings: Settings, action: str, kind: str
) -> AsyncIterator[None]:
    """The action's audit rows, as the CLI writes them: one before ("attempt"; no row, no
    token or code), one after with its outcome."""
    user = getpass.getuser()

    async def record(outcome: str) -> None:
        await security.record(
            pool,
            key=settings.audit_chain_key,
            actor=user,
            role="cli",
            action=f"cli {action}",
            resource_type=kind,
            resource_id=DEV_ADMIN,
            source=f"cli:{user}@{socket.gethostname()}",
            outcome=outcome,
        )

    await record("attempt")
    try:
        yield
    except BaseException as exc:
        await record(f"failed: {type(exc).__name__}")
        raise
    await record("ok")


async def ensure_dev_token(pool: asyncpg.Pool, settings: Settings) -> Path:
    """The dev-token file holding a working development administrator token: the one there
    while it is valid, else a new one (the first run, or after it was revoked or expired).
    A file others could read is replaced, and its token revoked."""
    _refuse_in_production(settings, "the development administrator's token")
    path = token_path(settings)
    text = path.read_text().strip() if path.is_file() else ""
    found = await security.find_token(pool, text) if text else None
    if found is not None and found.role == Role.DEVELOPER and found.subject == DEV_ADMIN:
        if _private(path):
            return path
        await security.revoke_token(pool, found.id)  # readable by others: no longer a secret
    async with _audited(pool, settings, "up dev-token", "token"):
        _, token = await security.create_token(
            pool, name="carebridge up (development)", subject=DEV_ADMIN, role=Role.DEVELOPER.value
        )
        _write_private(path, token)
    return path


async def issue_login_url(pool: asyncpg.Pool, settings: Settings, by: str = "up") -> str:
    """A fresh one-time sign-in URL for the development administrator (the code in it works
    once, for login_codes.CODE_LIFETIME)."""
    _refuse_in_production(settings, "a one-time sign-in URL")
    async with _audited(pool, settings, f"{by} sign-in code", "session"):
        code = await login_codes.issue_code(pool, subject=DEV_ADMIN, role=Role.DEVELOPER.value)
    return f"{settings.api_url}/login?code={code}"


async def prepare(pool: asyncpg.Pool, settings: Settings) -> DevelopmentAccess:
    """What `carebridge up` does in development: the token file and a sign-in URL."""
    return DevelopmentAccess(
        await ensure_dev_token(pool, settings), await issue_login_url(pool, settings)
    )
