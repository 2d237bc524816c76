"""Who the patients of a page of transitions are: their registry records and encounter facts
(store/registry.py), opened in a fixed number of queries for the whole page, never one per
row, and summed up as a care manager reads them (schemas.worklist.PatientSummary)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from datetime import date

import asyncpg

from schemas.diagnoses import diagnosis_title
from schemas.worklist import PatientSummary
from store import registry
from store.encryption import FieldCipher

_KEYS = """
SELECT t.transition_id,
       COALESCE(d.patient_key, (SELECT e.patient_key FROM encounters e
                                WHERE e.transition_id = t.transition_id
                                ORDER BY (e.kind = 'discharge') DESC LIMIT 1)) AS patient_key
FROM unnest($1::text[]) AS t (transition_id)
LEFT JOIN encounter_details d ON d.transition_id = t.transition_id
"""


async def patient_keys(pool: asyncpg.Pool, transition_ids: Iterable[str]) -> dict[str, str]:
    """Each transition's opaque patient key (its encounter's, after merges); those without
    one are left out."""
    rows = await pool.fetch(_KEYS, list(dict.fromkeys(transition_ids)))
    return {r["transition_id"]: r["patient_key"] for r in rows if r["patient_key"]}


def summary(
    record: registry.PatientRecord | None,
    encounter: registry.EncounterDetails | None,
    patient_key: str,
    today: date,
) -> PatientSummary | None:
    """What a row shows of the patient; None when the registry knows nothing of either."""
    if record is None and encounter is None:
        return None
    person = record or registry.PatientRecord(patient_key=patient_key)
    stay = encounter or registry.EncounterDetails(transition_id="", patient_key=patient_key)
    return PatientSummary(
        patient_key=person.patient_key,
        name=person.display_name,
        family_name=person.family_name,
        given_name=person.given_name,
        birth_date=person.birth_date,
        age=person.age_on(today),
        sex=person.sex,
        mrn=person.mrn,
        merged_mrns=tuple(i.id for i in person.previous_identifiers),
        phone=person.phones[0] if person.phones else "",
        pcp=person.pcp,
        diagnosis=stay.principal_diagnosis,
        diagnosis_text=stay.principal_diagnosis_text,
        unit=stay.unit,
        length_of_stay_days=stay.length_of_stay_days,
    )


async def of_transitions(
    pool: asyncpg.Pool,
    cipher: FieldCipher,
    keys: Mapping[str, str],
    today: Mapping[str, date],
) -> dict[str, PatientSummary]:
    """The patient of each transition (`keys`: transition -> patient key), aged on its
    `today` (its facility's date); transitions the registry knows nothing of are left out."""
    if not keys:
        return {}
    records = await registry.get_patients(pool, cipher, keys.values())
    encounters = await registry.get_encounters(pool, cipher, keys)
    found = {}
    for transition_id, key in keys.items():
        shown = summary(records.get(key), encounters.get(transition_id), key, today[transition_id])
        if shown is not None:
            found[transition_id] = shown
    # The diagnosis in words: its ICD-10-CM title, else what the feed sent (the table's first
    # load takes a second or two: off the event loop).
    titles = await asyncio.to_thread(
        lambda: {
            (p.diagnosis, p.diagnosis_text): diagnosis_title(p.diagnosis, p.diagnosis_text)
            for p in found.values()
            if p.diagnosis
        }
    )
    return {
        tid: p.model_copy(update={"diagnosis_text": titles[(p.diagnosis, p.diagnosis_text)]})
        if p.diagnosis
        else p
        for tid, p in found.items()
    }
