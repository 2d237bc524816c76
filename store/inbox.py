"""The ADT inbox: a message is committed here before anything else happens to it, and its row
stays (never deleted) with what it caused.

The raw bytes are stored only sealed (store/encryption.py, bound to the row's id) and read
through `open_raw`, the one place that opens them. Retention (`purge_expired`) removes them
once they are no longer needed; the row keeps its metadata, content hash, decision and ACK.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import asyncpg

from store.encryption import FieldCipher, SealError
from store.reseal import BATCH, reseal_rows

Row = Mapping[str, Any] | asyncpg.Record  # a row as fetched, or as a dict of its columns


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


def _context(entry_id: int) -> str:
    """What a sealed message is bound to: its row (a value copied to another row won't open)."""
    return f"adt_inbox\x1f{entry_id}"


def open_raw(cipher: FieldCipher, row: Row) -> bytes | None:
    """The raw message of an inbox row (its `id`, `raw_sealed` and `raw` columns): opened, or
    the plaintext of a row written before sealing and not sealed yet; None once retention
    removed it."""
    if row["raw_sealed"] is not None:
        return cipher.open(bytes(row["raw_sealed"]), _context(row["id"]))
    return bytes(row["raw"]) if row["raw"] is not None else None


async def read_raw(pool: asyncpg.Pool, cipher: FieldCipher, entry_id: int) -> bytes | None:
    """The raw message of row `entry_id`, or None (no such row, or removed by retention)."""
    row = await pool.fetchrow("SELECT id, raw, raw_sealed FROM adt_inbox WHERE id = $1", entry_id)
    return open_raw(cipher, row) if row is not None else None


_INSERT = """
INSERT INTO adt_inbox (id, raw_sealed, raw_key_id, sending_application, sending_facility,
                       control_id, message_type, reprocessed_from, content_hash, received_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, coalesce($10::timestamptz, now()))
ON CONFLICT ((coalesce(sending_application, '')), (coalesce(sending_facility, '')), control_id,
             content_hash)
    WHERE reprocessed_from IS NULL AND control_id IS NOT NULL AND content_hash IS NOT NULL
    DO NOTHING
RETURNING id, status, ack
"""


# The rows this sender stored with this control id (the bytes only of rows stored before
# content keys existed, compared by their bytes), each with the id a new row would take:
# one round trip for both (a retransmission leaves a gap in the ids, as a failed insert does).
_EARLIER = """
SELECT n.next_id, e.id, e.status, e.ack, e.content_hash, e.sending_application,
       e.raw, e.raw_sealed
FROM (SELECT nextval(pg_get_serial_sequence('adt_inbox', 'id')) AS next_id) n
LEFT JOIN (
    SELECT id, status, ack, content_hash, sending_application,
           CASE WHEN content_hash IS NULL THEN raw END AS raw,
           CASE WHEN content_hash IS NULL THEN raw_sealed END AS raw_sealed
    FROM adt_inbox
    WHERE coalesce(sending_facility, '') = coalesce($1::text, '') AND control_id = $2
      AND reprocessed_from IS NULL
) e ON true
ORDER BY e.id
"""
_NEXT_ID = "SELECT nextval(pg_get_serial_sequence('adt_inbox', 'id'))"


def _content_key_of(cipher: FieldCipher, stored: Row) -> bytes | None:
    if stored["content_hash"] is not None:
        return bytes(stored["content_hash"])
    raw = open_raw(cipher, stored)
    return content_key(raw) if raw is not None else None


async def receive(
    pool: asyncpg.Pool,
    cipher: FieldCipher,
    *,
    raw: bytes,
    sending_application: str | None = None,
    sending_facility: str | None,
    control_id: str | None,
    message_type: str | None,
    reprocessed_from: int | None = None,
    at: datetime | None = None,
) -> InboxEntry:
    """Commit the raw message, received `at` (None: the database's now). A retransmission
    (same MSH-3, MSH-4, MSH-10 and content) returns the row already there; a different
    message with a control id seen before is a new row, flagged `reused_control_id`. The
    bytes are sealed before they are sent."""
    key = content_key(raw)
    earlier: list[asyncpg.Record] = []
    if control_id is not None and reprocessed_from is None:
        found = await pool.fetch(_EARLIER, sending_facility, control_id)
        entry_id: int = found[0]["next_id"]
        earlier = [stored for stored in found if stored["id"] is not None]
        for stored in earlier:
            same_sender = stored["sending_application"] in (None, sending_application)
            if same_sender and _content_key_of(cipher, stored) == key:
                return InboxEntry(
                    id=stored["id"], status=stored["status"], ack=stored["ack"], is_new=False
                )
    else:
        entry_id = await pool.fetchval(_NEXT_ID)
    row = await pool.fetchrow(
        _INSERT,
        entry_id,
        cipher.seal(raw, _context(entry_id)),
        cipher.current,
        sending_application,
        sending_facility,
        control_id,
        message_type,
        reprocessed_from,
        key,
        at,
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
    at: datetime | None = None,
) -> None:
    """Record what became of the message and the exact ACK sent (re-sent on retransmission),
    processed `at` (None: the database's now)."""
    await pool.execute(
        """
        UPDATE adt_inbox
        SET status = $2, ack_code = $3, ack = $4, error = $5, decision = $6,
            transition_id = $7, processed_at = coalesce($8::timestamptz, now())
        WHERE id = $1
        """,
        entry_id,
        status,
        ack_code,
        ack,
        error,
        decision,
        transition_id,
        at,
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


async def get_message(
    pool: asyncpg.Pool, cipher: FieldCipher, entry_id: int
) -> dict[str, Any] | None:
    """The row with its raw message opened (`raw`: None once retention removed it, or when
    it does not open: `raw_unreadable` then says why)."""
    row = await pool.fetchrow("SELECT * FROM adt_inbox WHERE id = $1", entry_id)
    if row is None:
        return None
    message = dict(row)
    try:
        message["raw"] = open_raw(cipher, row)
    except SealError as exc:  # its key was taken out of the keyring too early
        message["raw"] = None
        message["raw_unreadable"] = f"the raw message does not open: {exc}"
    for hidden in ("content_hash", "raw_sealed"):  # nothing for a reader
        message.pop(hidden, None)
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


def removal_notice(removed_at: datetime, zone: tzinfo) -> str:
    """What the browser shows instead of bytes that retention removed."""
    return f"raw message removed on {removed_at.astimezone(zone).date().isoformat()} (retention)"


class RawUnavailable(Exception):
    """A message that cannot be run again: retention removed its raw bytes (`removed`), or
    they do not open under the keyring."""

    def __init__(self, reason: str, *, removed: bool) -> None:
        super().__init__(reason)
        self.removed = removed


_PLAINTEXT = """
SELECT id, raw FROM adt_inbox WHERE raw IS NOT NULL AND raw_sealed IS NULL
ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
# A row stored before content keys existed gets its key with its seal (so a retransmission of
# it is recognised after retention removed the bytes), unless another row already has the
# same retransmission key (then it keeps none, as before).
_SEAL = """
UPDATE adt_inbox AS i
SET raw_sealed = v.sealed, raw_key_id = $3, raw = NULL,
    content_hash = CASE
        WHEN i.content_hash IS NOT NULL THEN i.content_hash
        WHEN i.control_id IS NULL OR i.reprocessed_from IS NOT NULL OR NOT EXISTS (
            SELECT 1 FROM adt_inbox o
            WHERE o.id <> i.id AND o.reprocessed_from IS NULL AND o.control_id = i.control_id
              AND coalesce(o.sending_application, '') = coalesce(i.sending_application, '')
              AND coalesce(o.sending_facility, '') = coalesce(i.sending_facility, '')
              AND o.content_hash = v.content_hash)
        THEN v.content_hash
    END
FROM unnest($1::bigint[], $2::bytea[], $4::bytea[]) AS v(id, sealed, content_hash)
WHERE i.id = v.id
"""


async def seal_plaintext(pool: asyncpg.Pool, cipher: FieldCipher, *, batch: int = BATCH) -> int:
    """Seal the rows written before the inbox was sealed and clear their plaintext, `batch`
    rows per transaction. Idempotent (a sealed row is not selected again); returns how many
    rows it sealed. The old bytes stay in dead tuples until `VACUUM FULL adt_inbox`."""
    sealed = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_PLAINTEXT, batch)
            if not rows:
                return sealed
            plain = [bytes(row["raw"]) for row in rows]
            await conn.execute(
                _SEAL,
                [row["id"] for row in rows],
                [
                    cipher.seal(raw, _context(row["id"]))
                    for row, raw in zip(rows, plain, strict=True)
                ],
                cipher.current,
                [content_key(raw) for raw in plain],
            )
        sealed += len(rows)


async def reencrypt(pool: asyncpg.Pool, cipher: FieldCipher, *, batch: int = BATCH) -> int:
    """Reseal every raw message not sealed under the current key, `batch` rows per
    transaction; idempotent. Returns how many it resealed. A value under a key the keyring
    does not hold stops it with a SealError naming the row (the batch's rows stay as they
    were)."""
    return await reseal_rows(
        pool,
        cipher,
        table="adt_inbox",
        key_column="id",
        sealed_column="raw_sealed",
        key_id_column="raw_key_id",
        key_type="bigint",
        context=_context,
        batch=batch,
    )
