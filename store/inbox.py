"""The ADT inbox: a message is committed here before anything else happens to it."""

from __future__ import annotations

from dataclasses import dataclass

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
) -> InboxEntry:
    """Commit the raw message; a known (facility, MSH-10) returns the row already there."""
    row = await pool.fetchrow(
        """
        INSERT INTO adt_inbox (raw, sending_facility, control_id, message_type)
        VALUES ($1, $2, $3, $4)
        ON CONFLICT ON CONSTRAINT adt_inbox_control_id_unique DO NOTHING
        RETURNING id, status, ack
        """,
        raw,
        sending_facility,
        control_id,
        message_type,
    )
    if row is not None:
        return InboxEntry(id=row["id"], status=row["status"], ack=row["ack"], is_new=True)
    existing = await pool.fetchrow(
        "SELECT id, status, ack FROM adt_inbox WHERE sending_facility = $1 AND control_id = $2",
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
    transition_id: str | None = None,
) -> None:
    """Record what became of the message and the exact ACK sent (re-sent on retransmission)."""
    await pool.execute(
        """
        UPDATE adt_inbox
        SET status = $2, ack_code = $3, ack = $4, error = $5, transition_id = $6,
            processed_at = now()
        WHERE id = $1
        """,
        entry_id,
        status,
        ack_code,
        ack,
        error,
        transition_id,
    )


async def record_error(pool: asyncpg.Pool, entry_id: int, error: str) -> None:
    """Note a transient failure; the row stays 'received' so a retransmission retries it."""
    await pool.execute("UPDATE adt_inbox SET error = $2 WHERE id = $1", entry_id, error)
