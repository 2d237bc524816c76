"""Retention of the inbox's raw messages (CAREBRIDGE_INBOX_RETENTION_DAYS, default 90).

The rule, per message:
- one that names a transition (it started it, or was routed to it) keeps its raw bytes while
  that transition is open and for N days after it closed. Closed: its projection row's status
  is no longer `active`; closed at: that row's `updated_at` (the projection's last write, which
  for a closed transition is its closure). A transition the projection does not hold yet
  counts as open.
- one that names none (rejected, ignored, duplicate, no protocol, too old) keeps them N days
  after it was received.
- one not settled yet (`received`: awaiting a retry or `messages reprocess`; `pending`: a
  visit event waiting for its discharge) keeps them whatever its age.

Removing clears the sealed bytes (and any plaintext) and sets `raw_removed_at`; the row keeps
its metadata, content hash (a retransmission still gets its stored ACK), decision and ACK.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

BATCH = 500
MAX_BATCHES = 20  # per scheduled run: the next night's run continues

_DUE = """
SELECT i.id FROM adt_inbox i
LEFT JOIN transitions t ON t.transition_id = i.transition_id
WHERE i.raw_removed_at IS NULL
  AND (i.raw_sealed IS NOT NULL OR i.raw IS NOT NULL)
  AND i.status NOT IN ('received', 'pending')
  AND CASE WHEN i.transition_id IS NULL THEN i.received_at < $1
           ELSE t.status <> 'active' AND t.updated_at < $1 END
"""
_COUNT = f"SELECT count(*) FROM ({_DUE}) AS due"
_REMOVE = f"""
WITH due AS ({_DUE} ORDER BY i.id LIMIT $2 FOR UPDATE OF i SKIP LOCKED)
UPDATE adt_inbox AS i
SET raw_sealed = NULL, raw_key_id = NULL, raw = NULL, raw_removed_at = $3
FROM due WHERE i.id = due.id
"""


@dataclass(frozen=True)
class Purge:
    removed: int  # raw messages removed (in a dry run: that would be)
    more: bool = False  # the bound was reached with more due: the next run continues


async def purge_expired(
    pool: asyncpg.Pool,
    *,
    retention_days: int,
    now: datetime,
    dry_run: bool = False,
    batch: int = BATCH,
    max_batches: int | None = MAX_BATCHES,
) -> Purge:
    """Remove the raw bytes retention no longer keeps, `batch` rows per transaction and at
    most `max_batches` batches (None: until none is due). Idempotent."""
    cutoff = now - timedelta(days=retention_days)
    if dry_run:
        return Purge(removed=await pool.fetchval(_COUNT, cutoff))
    removed = batches = 0
    while max_batches is None or batches < max_batches:
        status = await pool.execute(_REMOVE, cutoff, batch, now)
        count = int(status.split()[-1])
        removed += count
        batches += 1
        if count < batch:
            return Purge(removed=removed)
    return Purge(removed=removed, more=bool(await pool.fetchval(_COUNT, cutoff)))
