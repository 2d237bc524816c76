"""The ADT inbox: a message is committed here before anything else happens to it, and stays
(never deleted) with what it caused."""

from __future__ import annotations

import hashlib
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
    reused_control_id: bool = False  # a different message already came with this MSH-10


def content_key(raw: bytes) -> bytes:
    """What makes two messages the same message: their bytes, whatever the framing and the
    sender's line endings left (a BOM, LF or CRLF for CR, a trailing terminator)."""
    body = raw.removeprefix(b"\xef\xbb\xbf").replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    return hashlib.sha256(body.strip()).digest()


_INSERT = """
INSERT INTO adt_inbox (raw, sending_application, sending_facility, control_id, message_type,
                       reprocessed_from, content_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT ((coalesce(sending_application, '')), (coalesce(sending_facility, '')), control_id,
             content_hash)
    WHERE reprocessed_from IS NULL AND control_id IS NOT NULL AND content_hash IS NOT NULL
    DO NOTHING
RETURNING id, status, ack
"""


async def receive(
    pool: asyncpg.Pool,
    *,
    raw: bytes,
    sending_application: str | None = None,
    sending_facility: str | None,
    control_id: str | None,
    message_type: str | None,
    reprocessed_from: int | None = None,
) -> InboxEntry:
    """Commit the raw message. A retransmission (same MSH-3, MSH-4, MSH-10 and content)
    returns the row already there; a different message with a control id seen before is
    a new row, flagged `reused_control_id`."""
    key = content_key(raw)
    earlier: list[asyncpg.Record] = []
    if control_id is not None and reprocessed_from is None:
        earlier = await pool.fetch(
            "SELECT id, status, ack, raw, content_hash, sending_application FROM adt_inbox "
            "WHERE coalesce(sending_facility, '') = coalesce($1::text, '') AND control_id = $2 "
            "AND reprocessed_from IS NULL ORDER BY id",
            sending_facility,
            control_id,
        )
        for stored in earlier:
            same_sender = stored["sending_application"] in (None, sending_application)
            # rows stored before content keys existed are compared by their bytes
            same_content = (stored["content_hash"] or content_key(bytes(stored["raw"]))) == key
            if same_sender and same_content:
                return InboxEntry(
                    id=stored["id"], status=stored["status"], ack=stored["ack"], is_new=False
                )
    row = await pool.fetchrow(
        _INSERT,
        raw,
        sending_application,
        sending_facility,
        control_id,
        message_type,
        reprocessed_from,
        key,
    )
    if row is None:  # the same message, committed by a concurrent connection meanwhile
        same = await pool.fetchrow(
            "SELECT id, status, ack FROM adt_inbox WHERE coalesce(sending_application, '') = "
            "coalesce($1::text, '') AND coalesce(sending_facility, '') = coalesce($2::text, '') "
            "AND control_id = $3 AND content_hash = $4 AND reprocessed_from IS NULL",
            sending_application,
            sending_facility,
            control_id,
            key,
        )
        if same is None:  # pragma: no cover - the conflicting row cannot vanish (no deletes)
            raise RuntimeError("inbox conflict without a row")
        return InboxEntry(id=same["id"], status=same["status"], ack=same["ack"], is_new=False)
    return InboxEntry(
        id=row["id"],
        status=row["status"],
        ack=row["ack"],
        is_new=True,
        reused_control_id=bool(earlier),
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
    message.pop("content_hash", None)  # the retransmission key: nothing for a reader
    message["reprocessed_by"] = [
        r["id"]
        for r in await pool.fetch(
            "SELECT id FROM adt_inbox WHERE reprocessed_from = $1 ORDER BY id", entry_id
        )
    ]
    return message


async def record_application_ack(
    pool: asyncpg.Pool,
    entry_id: int,
    *,
    destination: str,
    status: str,
    attempts: int = 0,
    error: str | None = None,
) -> None:
    """Where an enhanced-mode application ACK went and what became of it (pending, sent,
    failed with the reason, or kept when no destination is configured)."""
    await pool.execute(
        "UPDATE adt_inbox SET application_ack_to = $2, application_ack_status = $3, "
        "application_ack_attempts = $4, application_ack_error = $5 WHERE id = $1",
        entry_id,
        destination,
        status,
        attempts,
        error,
    )
