"""API tokens and the audit log (append-only, hash-chained: `verify` finds any edited row).

The chain is keyed (HMAC-SHA256 with a key held outside the database), so whoever can write
rows cannot recompute the hashes after an edit; an anchor (the latest id and hash, exported
to the log sink) lets `verify` see rows deleted from the tail. Rows written before the key
was used keep their unkeyed SHA-256 and are verified as such (hash_kind)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

TOKEN_PREFIX = "cb_"
DEFAULT_TOKEN_LIFETIME = timedelta(days=90)
GENESIS = "0" * 64
_AUDIT_LOCK = 0x0CA8EB81A0D1


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    subject: str
    role: str
    team: str | None


async def create_token(
    pool: asyncpg.Pool,
    *,
    name: str,
    subject: str,
    role: str,
    team: str | None = None,
    expires_in: timedelta | None = DEFAULT_TOKEN_LIFETIME,
) -> tuple[int, str]:
    """A new token; the clear text is returned once and never stored. It stops working
    after `expires_in` (None: never, for a system integration that is rotated by hand)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = await pool.fetchval(
        "INSERT INTO api_tokens (name, subject, role, team, token_hash, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, now() + $6::interval) RETURNING id",
        name,
        subject,
        role,
        team,
        hash_token(token),
        expires_in,
    )
    return int(token_id), token


async def find_token(pool: asyncpg.Pool, token: str) -> TokenRecord | None:
    row = await pool.fetchrow(
        "SELECT id, name, subject, role, team FROM api_tokens "
        "WHERE token_hash = $1 AND revoked_at IS NULL "
        "AND (expires_at IS NULL OR expires_at > now())",
        hash_token(token),
    )
    return TokenRecord(**dict(row)) if row else None


async def revoke_token(pool: asyncpg.Pool, token_id: int) -> bool:
    result = await pool.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", token_id
    )
    return bool(result.endswith(" 1"))


async def list_tokens(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT id, name, subject, role, team, created_at, expires_at, revoked_at FROM api_tokens "
        "ORDER BY id"
    )
    return [dict(row) for row in rows]


_FIELDS = (
    "at",
    "actor",
    "role",
    "action",
    "resource_type",
    "resource_id",
    "patient_key",
    "source",
    "outcome",
)


KEYED = "hmac-sha256"
UNKEYED = "sha256"  # rows written before the chain was keyed


@dataclass(frozen=True)
class Anchor:
    """The newest row's id and hash: exported, it pins the chain's end."""

    id: int
    hash: str

    def __str__(self) -> str:
        return f"{self.id}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        row_id, _, digest = text.strip().partition(":")
        if not row_id.isdigit() or len(digest) != 64:
            raise ValueError(f"not an audit anchor (ID:HASH): {text!r}")
        return cls(int(row_id), digest)


def _digest(prev_hash: str, row: dict[str, Any], key: bytes, kind: str = KEYED) -> str:
    body = {k: (row[k].isoformat() if isinstance(row[k], datetime) else row[k]) for k in _FIELDS}
    material = (prev_hash + json.dumps(body, sort_keys=True, separators=(",", ":"))).encode()
    if kind == UNKEYED:
        return hashlib.sha256(material).hexdigest()
    return hmac.new(key, material, hashlib.sha256).hexdigest()


async def record(
    pool: asyncpg.Pool,
    *,
    key: bytes,
    actor: str,
    role: str,
    action: str,
    resource_type: str,
    resource_id: str | None,
    outcome: str,
    source: str | None = None,
    patient_key: str | None = None,
) -> None:
    """Append one row, chained to the previous one (serialised by an advisory lock)."""
    await record_each(
        pool,
        key=key,
        actor=actor,
        role=role,
        action=action,
        resource_type=resource_type,
        shown=[(resource_id, patient_key)],
        outcome=outcome,
        source=source,
    )


async def record_each(
    pool: asyncpg.Pool,
    *,
    key: bytes,
    actor: str,
    role: str,
    action: str,
    resource_type: str,
    shown: Sequence[tuple[str | None, str | None]],
    outcome: str,
    source: str | None = None,
) -> None:
    """Append one row per (resource id, patient key) shown, e.g. each patient of a worklist
    page, chained in order in one transaction (one lock, however long the page)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _AUDIT_LOCK)
        prev = await conn.fetchval("SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1")
        at = await conn.fetchval("SELECT date_trunc('milliseconds', clock_timestamp())")
        prev_hash = prev or GENESIS
        for resource_id, patient_key in shown:
            row = {
                "at": at,
                "actor": actor,
                "role": role,
                "action": action,
                "resource_type": resource_type,
                "resource_id": resource_id,
                "patient_key": patient_key,
                "source": source,
                "outcome": outcome,
            }
            digest = _digest(prev_hash, row, key)
            await conn.execute(
                "INSERT INTO audit_log (at, actor, role, action, resource_type, resource_id, "
                "patient_key, source, outcome, prev_hash, hash, hash_kind) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                *(row[k] for k in _FIELDS),
                prev_hash,
                digest,
                KEYED,
            )
            prev_hash = digest


@dataclass(frozen=True)
class Verification:
    checked: int
    broken: int | None  # the first row that does not match its chain
    anchor_problem: str | None = None  # the exported anchor is not in the chain

    @property
    def intact(self) -> bool:
        return self.broken is None and self.anchor_problem is None


async def latest_anchor(pool: asyncpg.Pool) -> Anchor | None:
    row = await pool.fetchrow("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
    return Anchor(row["id"], row["hash"]) if row is not None else None


async def patient_key_of(pool: asyncpg.Pool, transition_id: str) -> str | None:
    """The opaque patient key of a transition, for its audit rows."""
    found = await pool.fetchval(
        "SELECT patient_key FROM encounters WHERE transition_id = $1 LIMIT 1", transition_id
    )
    return str(found) if found is not None else None


async def verify(pool: asyncpg.Pool, key: bytes, anchor: Anchor | None = None) -> Verification:
    """Recompute the chain; with an anchor, its row must be there with the anchored hash (an
    edit before it, or rows deleted from the tail past it, show)."""
    prev_hash = GENESIS
    checked = 0
    anchored: str | None = None
    keyed_seen = False  # once the chain is keyed, an unkeyed row is a downgrade: forged
    async with pool.acquire() as conn, conn.transaction():
        async for row in conn.cursor("SELECT * FROM audit_log ORDER BY id"):
            record_ = dict(row)
            kind = record_["hash_kind"]
            digest = _digest(prev_hash, record_, key, kind)
            downgraded = keyed_seen and kind != KEYED
            if downgraded or record_["prev_hash"] != prev_hash or record_["hash"] != digest:
                return Verification(checked, record_["id"])
            keyed_seen = keyed_seen or kind == KEYED
            if anchor is not None and record_["id"] == anchor.id:
                anchored = record_["hash"]
            prev_hash = record_["hash"]
            checked += 1
    problem = None
    if anchor is not None and anchored is None:
        problem = f"row {anchor.id} of the anchor is missing (rows deleted?)"
    elif anchor is not None and anchored != anchor.hash:
        problem = f"row {anchor.id} does not have the anchored hash"
    return Verification(checked, None, problem)


async def search(
    pool: asyncpg.Pool,
    *,
    actor: str | None = None,
    resource_id: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """
        SELECT id, at, actor, role, action, resource_type, resource_id, patient_key, source,
               outcome
        FROM audit_log
        WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR resource_id = $2)
          AND ($3::timestamptz IS NULL OR at >= $3)
        ORDER BY id DESC LIMIT $4
        """,
        actor,
        resource_id,
        since,
        limit,
    )
    return [dict(row) for row in rows]
