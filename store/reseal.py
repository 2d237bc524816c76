"""Moving sealed columns to the current key (`carebridge keys reencrypt`): the registry's
patients and encounters and the inbox's raw messages are resealed the same way, a batch of
rows per transaction, each value opened and sealed again under the context it is bound to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from store.encryption import FieldCipher, SealError, key_id_of

BATCH = 500  # rows per transaction


async def reseal_rows(
    pool: asyncpg.Pool,
    cipher: FieldCipher,
    *,
    table: str,
    key_column: str,
    sealed_column: str,
    key_id_column: str,
    key_type: str,
    context: Callable[[Any], str],
    batch: int = BATCH,
) -> int:
    """Reseal every value of `table` (rows keyed by `key_column`, of SQL type `key_type`)
    not under the current key (a NULL one, removed by retention, is left alone); returns how
    many. Idempotent: a resealed row is not selected again, and a row written meanwhile is
    already current. A value under a key the keyring lacks stops it with a SealError naming
    the table, the row and the key (that batch stays as it was). The SQL names are this
    package's own, never input."""
    select = (
        f"SELECT {key_column} AS key, {sealed_column} AS sealed FROM {table} "
        f"WHERE {sealed_column} IS NOT NULL AND {key_id_column} IS DISTINCT FROM $1 "
        f"ORDER BY {key_column} LIMIT $2 FOR UPDATE SKIP LOCKED"
    )
    update = (
        f"UPDATE {table} AS t SET {sealed_column} = v.sealed, {key_id_column} = $3 "
        f"FROM unnest($1::{key_type}[], $2::bytea[]) "
        f"AS v(key, sealed) WHERE t.{key_column} = v.key"
    )
    resealed = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(select, cipher.current, batch)
            if not rows:
                return resealed
            values = [
                _resealed(cipher, table, row["key"], bytes(row["sealed"]), context) for row in rows
            ]
            await conn.execute(update, [row["key"] for row in rows], values, cipher.current)
        resealed += len(rows)


def _resealed(
    cipher: FieldCipher, table: str, key: Any, sealed: bytes, context: Callable[[Any], str]
) -> bytes:
    try:
        return cipher.reseal(sealed, context(key))
    except SealError:
        raise SealError(
            f"{table} row {key} is sealed with key {key_id_of(sealed)!r}, which does not open "
            "it: add that key to the keyring (CAREBRIDGE_CODEC_KEYS) and run it again"
        ) from None
