"""The protected patient registry: who each opaque patient key is, sealed at rest.

One sealed JSON document per row (store/encryption.py FieldCipher, bound to the row by its
context), updated by every ADT event that carries a PID (store/registry_rules.py says how),
merged by A40 and the other patient merges (the merged row keeps `merged_into`, the survivor
gains `merged_from`), found by keyed blind indexes that are rewritten with every update: a
search never decrypts the table. Encounter facts (principal diagnosis, unit, stay) are kept
per transition the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from schemas.adt import AdtEvent
from store.encryption import BlindIndex, FieldCipher
from store.registry_rules import (
    ENCOUNTER_FIELDS,
    PATIENT_FIELDS,
    EncounterDetails,
    PatientRecord,
    apply,
    encounter_document,
    encounter_of,
    encounter_update,
    fill_gaps,
    index_terms,
    is_newer,
    latest,
    parse_query,
    patient_document,
    patient_of,
    patient_update,
)
from store.reseal import reseal_rows

__all__ = [
    "EncounterDetails",
    "PatientRecord",
    "get_encounters",
    "get_patient",
    "get_patients",
    "merge",
    "record_event",
    "reencrypt",
    "search",
]

# A pool, or a connection (then the caller's transaction holds the registry's writes).
Db = Any
MAX_HOPS = 16  # merges followed to a survivor (store/aliases.py has the same bound)
_LOCK_CLASS = 0x0CB5  # the registry's advisory locks (pg_advisory_xact_lock(class, hash))


def patient_context(patient_key: str) -> str:
    return f"patients\x1f{patient_key}"


def encounter_context(transition_id: str) -> str:
    return f"encounter_details\x1f{transition_id}"


@asynccontextmanager
async def _transaction(db: Db) -> AsyncIterator[Any]:
    """A transaction on the pool's connection, or a savepoint in the caller's one."""
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn, conn.transaction():
            yield conn
    else:
        async with db.transaction():
            yield db


async def _lock(conn: Any, *keys: str) -> None:
    """Serialise writers of these rows (two events of one patient, a merge), in key order."""
    await _lock_in_order(conn, sorted(set(keys)))


async def _lock_in_order(conn: Any, keys: list[str]) -> None:
    """Take these locks one after the other, in the order given, in one round trip (a
    function scan of unnest yields the array's elements in order)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext(k)) FROM unnest($2::text[]) AS k",
        _LOCK_CLASS,
        keys,
    )


_SURVIVORS = """
WITH RECURSIVE edges (merged_key, surviving_key) AS (
    SELECT merged_key, surviving_key FROM patient_aliases
    UNION ALL
    SELECT patient_key, merged_into FROM patients WHERE merged_into IS NOT NULL
), chain (start, key, hops, seen) AS (
    SELECT k, k, 0, ARRAY[k] FROM unnest($1::text[]) AS k
    UNION ALL
    SELECT c.start, e.surviving_key, c.hops + 1, c.seen || e.surviving_key
    FROM chain c JOIN edges e ON e.merged_key = c.key
    WHERE c.hops < $2 AND NOT e.surviving_key = ANY (c.seen)
)
SELECT DISTINCT ON (start) start, key FROM chain ORDER BY start, hops DESC
"""


# The survivor of one key, found as _SURVIVORS finds it, then its lock and the `$4` locks
# after it, in that order (a lateral function scan per survivor row: there is one).
_SURVIVOR_LOCKED = f"""
WITH survivor AS ({_SURVIVORS})
SELECT s.key, count(*) AS locks
FROM survivor s,
     LATERAL (
         SELECT pg_advisory_xact_lock($3, hashtext(k))
         FROM unnest(ARRAY[s.key] || $4::text[]) AS k
     ) AS taken
GROUP BY s.key
"""


async def _survivor_locked(conn: Any, patient_key: str, then: list[str]) -> str:
    """The key `patient_key` survives in, with its lock held, then the locks of `then` (one
    round trip; writers of one patient serialise on the survivor's lock, as with `_lock`)."""
    row = await conn.fetchrow(_SURVIVOR_LOCKED, [patient_key], MAX_HOPS, _LOCK_CLASS, then)
    return str(row["key"]) if row is not None else patient_key


async def _survivors(db: Db, keys: Iterable[str]) -> dict[str, str]:
    """Each key's surviving key, through the merges (store/aliases.py) and the registry's
    own merged_into: itself unless merged away."""
    wanted = list(dict.fromkeys(k for k in keys if k))
    if not wanted:
        return {}
    rows = await db.fetch(_SURVIVORS, wanted, MAX_HOPS)
    return {row["start"]: row["key"] for row in rows}


async def _patient_row(conn: Any, cipher: FieldCipher, key: str) -> tuple[PatientRecord, Any]:
    row = await conn.fetchrow(
        "SELECT sealed, as_of, merged_into, updated_at FROM patients WHERE patient_key = $1", key
    )
    if row is None:
        return PatientRecord(patient_key=key), None
    document = cipher.open_json(bytes(row["sealed"]), patient_context(key))
    return patient_of(document, key, row["merged_into"], row["updated_at"]), row


# An encounter's details written (nothing when the transition is NULL), updated {at} (NULL:
# the database's now): $1 is the patient key and $3 the key id in both statements using it.
_ENCOUNTER_WRITE = """
INSERT INTO encounter_details (transition_id, patient_key, sealed, key_id, updated_at)
SELECT {transition}, $1, {sealed}, $3, coalesce({at}, now()) WHERE {transition} IS NOT NULL
ON CONFLICT (transition_id) DO UPDATE
    SET patient_key = EXCLUDED.patient_key, sealed = EXCLUDED.sealed,
        key_id = EXCLUDED.key_id, updated_at = EXCLUDED.updated_at
"""

# The patient's row and its search terms in one statement: the terms no longer true go, the
# new ones come (the ones kept conflict and stay); the row's insert is visible to
# patient_search's foreign key at the statement's end. $7 is the time (NULL: now); with $8
# (a transition id) and $9 (its sealed details) the encounter's details are written too.
_WITH_ENCOUNTER = _ENCOUNTER_WRITE.format(
    transition="$8::text", sealed="$9::bytea", at="$7::timestamptz"
)
_PATIENT_WRITE = f"""
WITH terms (kind, digest) AS (SELECT * FROM unnest($5::text[], $6::bytea[])),
written AS (
    INSERT INTO patients (patient_key, sealed, key_id, as_of, created_at, updated_at)
    VALUES ($1, $2, $3, $4, coalesce($7::timestamptz, now()), coalesce($7::timestamptz, now()))
    ON CONFLICT (patient_key) DO UPDATE
        SET sealed = EXCLUDED.sealed, key_id = EXCLUDED.key_id,
            as_of = EXCLUDED.as_of, updated_at = EXCLUDED.updated_at
),
gone AS (
    DELETE FROM patient_search
    WHERE patient_key = $1 AND (kind, digest) NOT IN (SELECT kind, digest FROM terms)
),
encounter AS ({_WITH_ENCOUNTER})
INSERT INTO patient_search (kind, digest, patient_key)
SELECT kind, digest, $1 FROM terms
ON CONFLICT DO NOTHING
"""


async def _write_patient(
    conn: Any,
    cipher: FieldCipher,
    index: BlindIndex,
    record: PatientRecord,
    as_of: datetime | None,
    at: datetime | None,
    encounter: tuple[str, bytes] | None = None,
) -> None:
    """Seal the record into its row (updated `at`; None: the database's now) and rewrite
    its blind indexes; with `encounter` (its transition id and sealed details), write those
    too, in the same statement."""
    key = record.patient_key
    sealed = cipher.seal_json(patient_document(record), patient_context(key))
    terms = index_terms(record)
    transition_id, details = encounter if encounter is not None else (None, None)
    await conn.execute(
        _PATIENT_WRITE,
        key,
        sealed,
        cipher.current,
        as_of,
        [kind for kind, _ in terms],
        [index.digest(kind, value) for kind, value in terms],
        at,
        transition_id,
        details,
    )


async def record_event(
    conn_or_pool: Db,
    cipher: FieldCipher,
    index: BlindIndex,
    *,
    patient_key: str,
    event: AdtEvent,
    transition_id: str | None,
    at: datetime | None = None,
) -> None:
    """Apply what an event says about its patient (and, with `transition_id`, about that
    transition's encounter), the rows stamped updated `at` (None: the database's now).
    Newer than the record: replaces what it sends, clears its HL7 nulls; older (a message
    a week late): only fills gaps. Repeating it changes nothing."""
    if not patient_key:
        return
    occurred = event.occurred_at
    async with _transaction(conn_or_pool) as conn:
        encounter_lock = [f"encounter\x1f{transition_id}"] if transition_id else []
        key = await _survivor_locked(conn, patient_key, encounter_lock)
        current, row, encounter_sealed = await _patient_and_encounter(
            conn, cipher, key, transition_id
        )
        as_of = row["as_of"] if row is not None else None
        sent, cleared = patient_update(event, key)
        newer = is_newer(occurred, as_of)  # a new row takes everything sent
        updated = apply(current, sent, cleared, newer=newer, names=PATIENT_FIELDS)
        details = None
        if transition_id:
            details = _encounter_details(cipher, event, transition_id, key, encounter_sealed)
        encounter = (transition_id, details) if transition_id and details else None
        if row is None or updated != current or latest(as_of, occurred) != as_of:
            await _write_patient(
                conn, cipher, index, updated, latest(as_of, occurred), at, encounter
            )
        elif encounter is not None:
            await conn.execute(
                _ENCOUNTER_WRITE.format(
                    transition="$2::text", sealed="$4::bytea", at="$5::timestamptz"
                ),
                key,
                encounter[0],
                cipher.current,
                encounter[1],
                at,
            )


_PATIENT_AND_ENCOUNTER = """
SELECT p.patient_key, p.sealed, p.as_of, p.merged_into, p.updated_at,
       e.sealed AS encounter_sealed
FROM (SELECT 1) AS one
LEFT JOIN patients p ON p.patient_key = $1
LEFT JOIN encounter_details e ON e.transition_id = $2
"""


async def _patient_and_encounter(
    conn: Any, cipher: FieldCipher, key: str, transition_id: str | None
) -> tuple[PatientRecord, Any, bytes | None]:
    """`_patient_row` and the encounter's sealed details (None: none yet), read together."""
    found = await conn.fetchrow(_PATIENT_AND_ENCOUNTER, key, transition_id)
    sealed = found["encounter_sealed"]
    encounter = bytes(sealed) if sealed is not None else None
    if found["patient_key"] is None:
        return PatientRecord(patient_key=key), None, encounter
    document = cipher.open_json(bytes(found["sealed"]), patient_context(key))
    record = patient_of(document, key, found["merged_into"], found["updated_at"])
    return record, found, encounter


def _encounter_details(
    cipher: FieldCipher,
    event: AdtEvent,
    transition_id: str,
    patient_key: str,
    sealed: bytes | None,
) -> bytes | None:
    """The encounter's details after this event, sealed, or None when they do not change
    (read under the encounter's lock, taken with the patient's; `sealed`: its row as read)."""
    context = encounter_context(transition_id)
    current, as_of = EncounterDetails(transition_id, patient_key), None
    if sealed is not None:
        current, as_of = encounter_of(cipher.open_json(sealed, context), transition_id, patient_key)
    sent, cleared = encounter_update(event, transition_id, patient_key)
    newer = is_newer(event.occurred_at, as_of)
    updated = apply(current, sent, cleared, newer=newer, names=ENCOUNTER_FIELDS)
    if sealed is not None and updated == current and latest(as_of, event.occurred_at) == as_of:
        return None
    document = encounter_document(updated, latest(as_of, event.occurred_at))
    return cipher.seal_json(document, context)


async def get_patient(pool: Db, cipher: FieldCipher, patient_key: str) -> PatientRecord | None:
    """The record of a patient key, or of the patient it was merged into; None if unknown."""
    return (await get_patients(pool, cipher, [patient_key])).get(patient_key)


async def get_patients(
    pool: Db, cipher: FieldCipher, patient_keys: Iterable[str]
) -> dict[str, PatientRecord]:
    """The records of these keys (each followed to its survivor), keyed by the key asked
    for; unknown keys are left out."""
    survivors = await _survivors(pool, patient_keys)
    rows = await pool.fetch(
        "SELECT patient_key, sealed, merged_into, updated_at FROM patients "
        "WHERE patient_key = ANY ($1::text[])",
        list(set(survivors.values())),
    )
    records = {
        row["patient_key"]: patient_of(
            cipher.open_json(bytes(row["sealed"]), patient_context(row["patient_key"])),
            row["patient_key"],
            row["merged_into"],
            row["updated_at"],
        )
        for row in rows
    }
    return {asked: records[found] for asked, found in survivors.items() if found in records}


async def get_encounters(
    pool: Db, cipher: FieldCipher, transition_ids: Iterable[str]
) -> dict[str, EncounterDetails]:
    """The encounter facts of these transitions; those without any are left out."""
    rows = await pool.fetch(
        "SELECT transition_id, patient_key, sealed FROM encounter_details "
        "WHERE transition_id = ANY ($1::text[])",
        list(dict.fromkeys(transition_ids)),
    )
    found = {}
    for row in rows:
        tid = row["transition_id"]
        document = cipher.open_json(bytes(row["sealed"]), encounter_context(tid))
        found[tid] = encounter_of(document, tid, row["patient_key"])[0]
    return found


_MATCHES = """
SELECT s.patient_key
FROM patient_search s
JOIN unnest($1::text[], $2::bytea[]) AS wanted (kind, digest)
  ON s.kind = wanted.kind AND s.digest = wanted.digest
GROUP BY s.patient_key
HAVING count(*) = $3
"""


async def search(pool: Db, index: BlindIndex, query: str, *, limit: int = 50) -> list[str]:
    """The surviving patient keys a query finds through the blind indexes (by birth date,
    phone, MRN or name prefixes: store/registry_rules.parse_query), most recently updated
    first. A match on a merged-away record finds its survivor."""
    matched: set[str] = set()
    for alternative in parse_query(query):
        rows = await pool.fetch(
            _MATCHES,
            [kind for kind, _ in alternative],
            [index.digest(kind, value) for kind, value in alternative],
            len(alternative),
        )
        matched.update(row["patient_key"] for row in rows)
    if not matched:
        return []
    survivors = await _survivors(pool, matched)
    rows = await pool.fetch(
        "SELECT patient_key FROM patients "
        "WHERE patient_key = ANY ($1::text[]) AND merged_into IS NULL "
        "ORDER BY updated_at DESC, patient_key LIMIT $2",
        list(set(survivors.values())),
        limit,
    )
    return [row["patient_key"] for row in rows]


async def merge(
    conn_or_pool: Db,
    cipher: FieldCipher,
    index: BlindIndex,
    *,
    merged_key: str,
    surviving_key: str,
    at: datetime | None = None,
) -> None:
    """The merged patient into the survivor: the survivor keeps its values, fills its gaps
    from the merged record and names it in merged_from; the merged row keeps
    merged_into (its blind indexes stay, so a search by the old MRN finds the survivor);
    the merged patient's encounters move. The first merge of a key stands (as in
    store/aliases.py): repeating one, or merging the key elsewhere later, changes nothing."""
    if not merged_key or not surviving_key or merged_key == surviving_key:
        return
    async with _transaction(conn_or_pool) as conn:
        await _lock(conn, merged_key, surviving_key)
        merged, merged_row = await _patient_row(conn, cipher, merged_key)
        if merged_row is not None and merged_row["merged_into"] is not None:
            return  # merged before (into this survivor or another): the first merge stands
        survivor, survivor_row = await _patient_row(conn, cipher, surviving_key)
        filled = fill_gaps(survivor, merged if merged_row is not None else None)
        if survivor_row is None or filled != survivor:
            as_of = latest(
                survivor_row["as_of"] if survivor_row is not None else None,
                merged_row["as_of"] if merged_row is not None else None,
            )
            await _write_patient(conn, cipher, index, filled, as_of, at)
        if merged_row is not None:
            await conn.execute(
                "UPDATE patients SET merged_into = $2, updated_at = coalesce($3, now()) "
                "WHERE patient_key = $1",
                merged_key,
                surviving_key,
                at,
            )
        await conn.execute(
            "UPDATE encounter_details SET patient_key = $2, updated_at = coalesce($3, now()) "
            "WHERE patient_key = $1",
            merged_key,
            surviving_key,
            at,
        )


async def reencrypt(pool: asyncpg.Pool, cipher: FieldCipher) -> int:
    """Reseal every patients and encounter_details row not under the current key, in
    batches (each its own transaction); returns how many were resealed. A row written
    meanwhile is already current and is left alone; run again, it finds nothing to do."""
    total = 0
    for table, key_column, context in (
        ("patients", "patient_key", patient_context),
        ("encounter_details", "transition_id", encounter_context),
    ):
        total += await reseal_rows(
            pool,
            cipher,
            table=table,
            key_column=key_column,
            sealed_column="sealed",
            key_id_column="key_id",
            key_type="text",
            context=context,
        )
    return total
