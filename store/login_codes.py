"""One-time sign-in codes: the code in the login URL `carebridge up` prints. Only its hash is
stored; it expires soon, and the first exchange for a session uses it up (a second, or a
race of two, gets nothing)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from store.security import hash_token

CODE_BYTES = 24
CODE_LIFETIME = timedelta(minutes=15)


@dataclass(frozen=True)
class Grant:
    """Whom a redeemed code signs in."""

    subject: str
    role: str
    team: str | None


async def issue_code(
    pool: asyncpg.Pool,
    *,
    subject: str,
    role: str,
    team: str | None = None,
    lifetime: timedelta = CODE_LIFETIME,
) -> str:
    """A new code (its clear text is returned once and never stored)."""
    code = secrets.token_urlsafe(CODE_BYTES)
    await pool.execute(
        "INSERT INTO login_codes (code_hash, subject, role, team, expires_at) "
        "VALUES ($1, $2, $3, $4, now() + $5::interval)",
        hash_token(code),
        subject,
        role,
        team,
        lifetime,
    )
    return code


async def redeem_code(pool: asyncpg.Pool, code: str) -> Grant | None:
    """Use the code up: whom it signs in, or None (unknown, used, expired). Atomic: of two
    exchanges of one code at once, one gets the grant."""
    row = await pool.fetchrow(
        "UPDATE login_codes SET used_at = now() "
        "WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now() "
        "RETURNING subject, role, team",
        hash_token(code),
    )
    return Grant(row["subject"], row["role"], row["team"]) if row else None
