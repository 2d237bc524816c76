"""The inbox retention rule (store/inbox_retention.py), row by row, on a database of the test's
own and a clock the test owns: which raw messages are removed N days after their transition
closed or (without one) after they arrived, which are never, and the bound per run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from store import inbox
from store.encryption import FieldCipher
from store.inbox_retention import purge_expired
from tests.helpers import a03
from workers.runtime.services import field_cipher_for
from workers.runtime.settings import Settings

NOW = datetime(2031, 3, 14, 12, 0, tzinfo=UTC)  # the test's clock; retention: 90 days
OLD = NOW - timedelta(days=91)
RECENT = NOW - timedelta(days=89)


async def transition(pool: asyncpg.Pool, status: str, updated_at: datetime) -> str:
    tid = uuid.uuid4().hex[:24]
    await pool.execute(
        "INSERT INTO transitions (transition_id, encounter_key, facility, protocol_id, "
        "protocol_version, status, discharged_at, updated_at, version) "
        "VALUES ($1, $1, 'RET', 'discharge-home', 1, $2, $3, $3, 1)",
        tid,
        status,
        updated_at,
    )
    return tid


async def message(
    pool: asyncpg.Pool,
    cipher: FieldCipher,
    *,
    status: str,
    received_at: datetime,
    transition_id: str | None = None,
) -> int:
    entry = await inbox.receive(
        pool,
        cipher,
        raw=a03(facility="RET"),
        sending_facility="RET",
        control_id=uuid.uuid4().hex[:20],
        message_type="ADT^A03",
    )
    await pool.execute(
        "UPDATE adt_inbox SET status = $2, received_at = $3, transition_id = $4, ack = 'ACK' "
        "WHERE id = $1",
        entry.id,
        status,
        received_at,
        transition_id,
    )
    return entry.id


async def held(pool: asyncpg.Pool) -> set[int]:
    rows = await pool.fetch("SELECT id FROM adt_inbox WHERE raw_sealed IS NOT NULL")
    return {row["id"] for row in rows}


async def test_raw_messages_go_n_days_after_closure_or_arrival_and_unsettled_ones_stay(
    own_pool: asyncpg.Pool, settings: Settings
) -> None:
    cipher = field_cipher_for(settings)
    closed_long_ago = await transition(own_pool, "completed", OLD)
    closed_lately = await transition(own_pool, "cancelled", RECENT)
    still_open = await transition(own_pool, "active", OLD)
    ids = {
        "closed long ago": await message(
            own_pool, cipher, status="processed", received_at=OLD, transition_id=closed_long_ago
        ),
        "closed lately": await message(
            own_pool, cipher, status="processed", received_at=OLD, transition_id=closed_lately
        ),
        "open": await message(
            own_pool, cipher, status="processed", received_at=OLD, transition_id=still_open
        ),
        "unknown transition": await message(
            own_pool, cipher, status="processed", received_at=OLD, transition_id="not-projected"
        ),
        "old dead letter": await message(own_pool, cipher, status="rejected", received_at=OLD),
        "recent dead letter": await message(
            own_pool, cipher, status="rejected", received_at=RECENT
        ),
        "old ignored": await message(own_pool, cipher, status="ignored", received_at=OLD),
        "awaiting a retry": await message(own_pool, cipher, status="received", received_at=OLD),
        "waiting for its A03": await message(own_pool, cipher, status="pending", received_at=OLD),
    }
    expired = {ids["closed long ago"], ids["old dead letter"], ids["old ignored"]}

    counted = await purge_expired(own_pool, retention_days=90, now=NOW, dry_run=True)
    assert counted.removed == 3 and await held(own_pool) == set(ids.values())

    bounded = await purge_expired(own_pool, retention_days=90, now=NOW, batch=2, max_batches=1)
    assert (bounded.removed, bounded.more) == (2, True)
    rest = await purge_expired(own_pool, retention_days=90, now=NOW)
    assert (rest.removed, rest.more) == (1, False)
    assert await held(own_pool) == set(ids.values()) - expired
    assert (await purge_expired(own_pool, retention_days=90, now=NOW)).removed == 0  # idempotent

    removed = await own_pool.fetch(
        "SELECT raw_removed_at, ack, content_hash FROM adt_inbox WHERE id = ANY($1)",
        sorted(expired),
    )
    assert all(
        r["raw_removed_at"] == NOW and r["ack"] == "ACK" and r["content_hash"] for r in removed
    )
    assert await inbox.read_raw(own_pool, cipher, ids["old dead letter"]) is None
