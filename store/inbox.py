"""The ADT inbox: a message is committed here before anything else happens to it, and stays
(never deleted) with what it caused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg


@dataclass(frozen=True)
class InboxEntry:
    id: int
    status: str
    ack: str | None
    is_new: bool


async def receive(
    pool: asyncpg.Pool,
    *,
    raw: bytes,
    sending_facility: str | None,
    control_id: str | None,
    message_type: str | None,
    reprocessed_from: int | None = None,
) -> InboxEntry:
    """Commit the raw message; a known (facility, MSH-10) returns the row already there."""
    row = await pool.fetchrow(
        """
        INSERT INTO adt_inbox (raw, sending_facility, control_id, message_type, reprocessed_from)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (sending_facility, control_id) WHERE reprocessed_from IS NULL DO NOTHING
        RETURNING id, status, ack
        """,
        raw,
        sending_facility,
        control_id,
        message_type,
        reprocessed_from,
    )
    if row is not None:
        return InboxEntry(id=row["id"], status=row["status"], ack=row["ack"], is_new=True)
    existing = await pool.fetchrow(
        "SELECT id, status, ack FROM adt_inbox WHERE sending_facility = $1 AND control_id = $2 "
        "AND reprocessed_from IS NULL",
        sending_facility,
        control_id,
    )
    if existing is None:  # pragma: no cover - the conflicting row cannot vanish (no deletes)
        raise RuntimeError("inbox conflict without a row")
    return InboxEntry(
        id=existing["id"], status=existing["status"], ack=existing["ack"], is_new=False
    )


async def settle(
    pool: asyncpg.Pool,
    entry_id: int,
    *,
    status: str,
    ack_code: str,
    ack: str,
    error: str | None = None,
    decision: str | None = None,
    transition_id: str | None = None,
) -> None:
    """Record what became of the message and the exact ACK sent (re-sent on retransmission)."""
    await pool.execute(
        """
        UPDATE adt_inbox
        SET status = $2, ack_code = $3, ack = $4, error = $5, decision = $6,
            transition_id = $7, processed_at = now()
        WHERE id = $1
        """,
        entry_id,
        status,
        ack_code,
        ack,
        error,
        decision,
        transition_id,
    )


async def record_error(pool: asyncpg.Pool, entry_id: int, error: str) -> None:
    """Note a transient failure; the row stays 'received' so a retransmission retries it."""
    await pool.execute("UPDATE adt_inbox SET error = $2 WHERE id = $1", entry_id, error)


async def list_messages(
    pool: asyncpg.Pool,
    *,
    status: str | None = None,
    message_type: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """
        SELECT id, received_at, sending_facility, control_id, message_type, status, ack_code,
               decision, error, transition_id, reprocessed_from
        FROM adt_inbox
        WHERE ($1::text IS NULL OR status = $1)
          AND ($2::text IS NULL OR message_type = $2 OR message_type LIKE '%^' || $2)
          AND ($3::timestamptz IS NULL OR received_at >= $3)
        ORDER BY id DESC
        LIMIT $4
        """,
        status,
        message_type,
        since,
        limit,
    )
    return [dict(row) for row in rows]


async def get_message(pool: asyncpg.Pool, entry_id: int) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM adt_inbox WHERE id = $1", entry_id)
    if row is None:
        return None
    message = dict(row)
    message["reprocessed_by"] = [
        r["id"]
        for r in await pool.fetch(
            "SELECT id FROM adt_inbox WHERE reprocessed_from = $1 ORDER BY id", entry_id
        )
    ]
    return message
