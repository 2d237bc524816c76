"""Who the patients of a TCM report's rows are, for the roles that may read it (a care
manager, a supervisor): name and MRN from the registry (store/registry.py), opened in one
query for the whole report. The caller audits each patient shown (workers/api/audit_trail)."""

from __future__ import annotations

from typing import Any

import asyncpg

from store import people, registry
from store.encryption import FieldCipher

PATIENT_COLUMNS = ("patient", "mrn")


async def with_patients(
    pool: asyncpg.Pool, cipher: FieldCipher, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows with `patient` (name), `mrn` and the opaque `patient_key`; blank when the
    registry does not know the patient."""
    keys = await people.patient_keys(pool, [r["transition_id"] for r in rows])
    records = await registry.get_patients(pool, cipher, keys.values())
    shown = []
    for row in rows:
        key = keys.get(row["transition_id"])
        record = records.get(key) if key else None
        shown.append(
            row
            | {
                "patient_key": key,
                "patient": record.display_name if record else "",
                "mrn": record.mrn if record else "",
            }
        )
    return shown
