"""Server-side web sessions: the browser holds a random id (only its hash is stored), the
session expires after an idle time and at an absolute time, is revoked by logout, and
carries its own CSRF token for the pages' state-changing calls."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from store.security import hash_token

SESSION_BYTES = 32
TOUCH_EVERY = timedelta(minutes=1)  # last_seen_at is written at most this often


@dataclass(frozen=True)
class Session:
    subject: str
    role: str
    team: str | None
    csrf_token: str


async def open_session(
    pool: asyncpg.Pool, *, subject: str, role: str, team: str | None, lifetime: timedelta
) -> tuple[str, Session]:
    """A new session; returns its id (for the cookie, never stored) and the session."""
    session_id = secrets.token_urlsafe(SESSION_BYTES)
    csrf = secrets.token_urlsafe(24)
    await pool.execute(
        "INSERT INTO web_sessions (id_hash, subject, role, team, csrf_token, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, now() + $6::interval)",
        hash_token(session_id),
        subject,
        role,
        team,
        csrf,
        lifetime,
    )
    return session_id, Session(subject, role, team, csrf)


async def find_session(pool: asyncpg.Pool, session_id: str, idle: timedelta) -> Session | None:
    """The live session of this id (not revoked, not past its absolute or idle expiry);
    a found one is marked as seen."""
    row = await pool.fetchrow(
        "SELECT subject, role, team, csrf_token, last_seen_at, now() AS now FROM web_sessions "
        "WHERE id_hash = $1 AND revoked_at IS NULL AND expires_at > now() "
        "AND last_seen_at > now() - $2::interval",
        hash_token(session_id),
        idle,
    )
    if row is None:
        return None
    if row["now"] - row["last_seen_at"] > TOUCH_EVERY:
        await pool.execute(
            "UPDATE web_sessions SET last_seen_at = now() WHERE id_hash = $1",
            hash_token(session_id),
        )
    return Session(row["subject"], row["role"], row["team"], row["csrf_token"])


async def close_session(pool: asyncpg.Pool, session_id: str) -> None:
    await pool.execute(
        "UPDATE web_sessions SET revoked_at = now() WHERE id_hash = $1 AND revoked_at IS NULL",
        hash_token(session_id),
    )
