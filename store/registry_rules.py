"""The patient registry's records and the rules that change them, without a database.

What an ADT event says about its patient and encounter, how it changes the record kept (a
newer event replaces what it sends and clears what it sends as the HL7 null; an older one
only fills what the record lacks), how a merge fills the survivor's gaps, which blind-index
terms a record has, and what a search query asks for. store/registry.py keeps the records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from typing import Any, TypeVar

from schemas.adt import AdtEvent, NextOfKin, PatientIdentifier
from store.encryption import (
    MAX_PREFIX,
    MIN_PREFIX,
    name_prefixes,
    name_tokens,
    normalise_birth_date,
    normalise_identifier,
    normalise_phone,
)


@dataclass(frozen=True)
class PatientRecord:
    """Who a patient key is, as the feeds said. PHI: shown only to people who may see it."""

    patient_key: str
    family_name: str = ""
    given_name: str = ""
    middle_name: str = ""
    birth_date: date | None = None
    sex: str = ""  # PID-8 as sent (F, M, O, U, ...)
    identifiers: tuple[PatientIdentifier, ...] = ()
    phones: tuple[str, ...] = ()  # preferred (PID-13 first repetition) first
    address: str = ""
    language: str = ""  # PID-15 code as sent
    pcp: str = ""  # PD1-4 / ROL(PP|PCP): the provider's name when sent, else the id
    caregivers: tuple[NextOfKin, ...] = ()
    merged_from: tuple[str, ...] = ()  # patient keys merged into this one
    # The identifiers of the records merged into this one (an A40's MRG-1 patient's PID-3):
    # the MRN on an old letter or wristband still says who the patient is.
    previous_identifiers: tuple[PatientIdentifier, ...] = ()
    merged_into: str | None = None
    updated_at: datetime | None = None

    @property
    def display_name(self) -> str:
        """ "Given Middle Family", "" when unknown."""
        return " ".join(p for p in (self.given_name, self.middle_name, self.family_name) if p)

    @property
    def mrn(self) -> str:
        """The first identifier of type MR, else the first identifier ("" without any)."""
        chosen = next((i for i in self.identifiers if i.type_code == "MR"), None)
        chosen = chosen or (self.identifiers[0] if self.identifiers else None)
        return chosen.id if chosen else ""

    def age_on(self, day: date) -> int | None:
        """Completed years on that day; None without a birth date or before it."""
        born = self.birth_date
        if born is None or day < born:
            return None
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclass(frozen=True)
class EncounterDetails:
    """The facts of a transition's encounter a care manager reads. PHI (the diagnosis)."""

    transition_id: str
    patient_key: str
    principal_diagnosis: str = ""  # ICD-10 code
    principal_diagnosis_text: str = ""  # DG1-3.2 as sent
    unit: str = ""  # PV1-3.1
    admitted_at: datetime | None = None
    discharged_at: datetime | None = None
    disposition: str = ""  # PV1-36

    @property
    def length_of_stay_days(self) -> int | None:
        """Midnights between admission and discharge, each on its own clock as sent (CMS
        counting: a same-day stay is 0); None when either is unknown or out of order."""
        if self.admitted_at is None or self.discharged_at is None:
            return None
        days = (self.discharged_at.date() - self.admitted_at.date()).days
        return days if days >= 0 else None


# The fields an event changes (the rest are the row's identity and merge bookkeeping).
PATIENT_FIELDS = (
    "family_name",
    "given_name",
    "middle_name",
    "birth_date",
    "sex",
    "identifiers",
    "phones",
    "address",
    "language",
    "pcp",
    "caregivers",
)
ENCOUNTER_FIELDS = (
    "principal_diagnosis",
    "principal_diagnosis_text",
    "unit",
    "admitted_at",
    "discharged_at",
    "disposition",
)
Record = TypeVar("Record", PatientRecord, EncounterDetails)


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == ()


def _emptied(record: Any, name: str) -> Any:
    return next(f.default for f in fields(record) if f.name == name)


def is_newer(event_at: datetime | None, as_of: datetime | None) -> bool:
    """An event replaces a record's values unless the record holds a newer one (an event
    without a time cannot show it is newer, so it only fills gaps of a record kept)."""
    if as_of is None:
        return True
    return event_at is not None and event_at >= as_of


def latest(as_of: datetime | None, event_at: datetime | None) -> datetime | None:
    """The newest event applied, after this one."""
    known = [t for t in (as_of, event_at) if t is not None]
    return max(known) if known else None


def apply(
    current: Record,
    sent: Record,
    cleared: frozenset[str],
    *,
    newer: bool,
    names: tuple[str, ...],
) -> Record:
    """The record after an event: newer, what it sends replaces and what it clears is
    emptied (an empty field keeps); older, it only fills the fields the record lacks."""
    changes: dict[str, Any] = {}
    for name in names:
        old, new = getattr(current, name), getattr(sent, name)
        if newer and name in cleared:
            changes[name] = _emptied(current, name)
        elif not _empty(new) and (newer or _empty(old)):
            changes[name] = new
    return replace(current, **changes)


def patient_update(event: AdtEvent, patient_key: str) -> tuple[PatientRecord, frozenset[str]]:
    """What an event says about its patient: the values it sends, and the fields it clears."""
    sent = PatientRecord(
        patient_key=patient_key,
        family_name=event.family_name,
        given_name=event.given_name,
        middle_name=event.middle_name,
        birth_date=event.birth_date,
        sex=event.sex,
        identifiers=event.patient_identifiers,
        phones=event.contact_numbers,
        address=event.address,
        language=event.language,
        pcp=event.pcp_name or (event.pcp_ids[0] if event.pcp_ids else ""),
        caregivers=event.next_of_kin,
    )
    cleared = set(event.cleared)
    if event.contact_numbers_cleared:
        cleared.add("phones")
    return sent, frozenset(cleared)


def encounter_update(
    event: AdtEvent, transition_id: str, patient_key: str
) -> tuple[EncounterDetails, frozenset[str]]:
    """What an event says about its encounter. A diagnosis code sent without its text
    clears the old text (it described another code)."""
    sent = EncounterDetails(
        transition_id=transition_id,
        patient_key=patient_key,
        principal_diagnosis=event.principal_diagnosis,
        principal_diagnosis_text=event.principal_diagnosis_text,
        unit=event.unit,
        admitted_at=event.admitted_at,
        discharged_at=event.discharged_at,
        disposition=event.discharge_disposition,
    )
    if event.principal_diagnosis and not event.principal_diagnosis_text:
        return sent, frozenset({"principal_diagnosis_text"})
    return sent, frozenset()


def fill_gaps(survivor: PatientRecord, merged: PatientRecord | None) -> PatientRecord:
    """A merge: the survivor keeps its values, takes the merged record's where it has none,
    and names the merged key (and those merged into it before) in merged_from."""
    filled = survivor
    if merged is not None:
        filled = apply(survivor, merged, frozenset(), newer=False, names=PATIENT_FIELDS)
    sources = merged.merged_from if merged is not None else ()
    keys = (*survivor.merged_from, merged.patient_key if merged else "", *sources)
    merged_from = tuple(dict.fromkeys(k for k in keys if k and k != survivor.patient_key))
    earlier = (merged.identifiers + merged.previous_identifiers) if merged is not None else ()
    previous = tuple(
        dict.fromkeys(
            i for i in (*survivor.previous_identifiers, *earlier) if i not in filled.identifiers
        )
    )
    return replace(filled, merged_from=merged_from, previous_identifiers=previous)


def index_terms(record: PatientRecord) -> list[tuple[str, str]]:
    """The (kind, normalised value) pairs a record is found by: every identifier, the birth
    date, every phone (whole, and its local 7 digits: a caller reads "555-0142"), every
    prefix of the family and given names."""
    terms = [("mrn", normalise_identifier(i.id)) for i in record.identifiers]
    if record.birth_date is not None:
        terms.append(("birth_date", normalise_birth_date(record.birth_date)))
    terms += [("phone", normalise_phone(p)) for p in record.phones]
    terms += [("phone_local", normalise_phone(p)[-LOCAL_DIGITS:]) for p in record.phones]
    for name in (record.family_name, record.given_name):
        terms += [("name", prefix) for prefix in name_prefixes(name)]
    return list(dict.fromkeys((kind, value) for kind, value in terms if value))


# One way a query can match: every term of it must be indexed for the patient.
Alternative = tuple[tuple[str, str], ...]
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_DATE_FORMS = ((_ISO_DATE, (0, 1, 2)), (_US_DATE, (2, 0, 1)), (_COMPACT_DATE, (0, 1, 2)))
_PHONE_LIKE = re.compile(r"\+?[\d\s().\-]+")
MIN_PHONE_DIGITS = 7
LOCAL_DIGITS = 7  # a number without its area code


def _as_date(text: str) -> date | None:
    """YYYY-MM-DD, MM/DD/YYYY or YYYYMMDD that names a real day."""
    for pattern, order in _DATE_FORMS:
        if match := pattern.fullmatch(text):
            parts = [int(match.group(n + 1)) for n in order]
            try:
                return date(parts[0], parts[1], parts[2])
            except ValueError:
                return None
    return None


def parse_query(query: str) -> list[Alternative]:
    """What a search asks for, as alternatives (any may match; all terms of one must):
    a date -> the birth date (a YYYYMMDD one also an MRN: MRNs are digits too); 7 or more
    digits with phone punctuation -> a phone or an MRN; anything else -> every word a name
    prefix, or the whole query an MRN."""
    text = query.strip()
    if not text:
        return []
    mrn: Alternative = (("mrn", normalise_identifier(text)),)
    if (born := _as_date(text)) is not None:
        by_date: Alternative = (("birth_date", normalise_birth_date(born)),)
        return [by_date, mrn] if text.isdigit() else [by_date]
    phone = normalise_phone(text)
    digits = re.sub(r"\D", "", text)
    if _PHONE_LIKE.fullmatch(text) and len(digits) >= MIN_PHONE_DIGITS:
        if len(digits) == LOCAL_DIGITS:
            return [(("phone_local", digits),), mrn]
        return [(("phone", phone),), mrn]
    tokens = name_tokens(text)
    long_enough = [t[:MAX_PREFIX] for t in tokens if len(t) >= MIN_PREFIX]
    words = long_enough or tokens  # "Doe J" asks for DOE; "J" alone for a one-letter name
    by_name: Alternative = tuple(dict.fromkeys(("name", w) for w in words))
    return [by_name, mrn] if by_name else [mrn]


def patient_document(record: PatientRecord) -> dict[str, Any]:
    """What is sealed for a patient row (its key, merged_into and times are columns)."""
    return {
        "family_name": record.family_name,
        "given_name": record.given_name,
        "middle_name": record.middle_name,
        "birth_date": record.birth_date.isoformat() if record.birth_date else None,
        "sex": record.sex,
        "identifiers": [i.model_dump() for i in record.identifiers],
        "phones": list(record.phones),
        "address": record.address,
        "language": record.language,
        "pcp": record.pcp,
        "caregivers": [k.model_dump() for k in record.caregivers],
        "merged_from": list(record.merged_from),
        "previous_identifiers": [i.model_dump() for i in record.previous_identifiers],
    }


def patient_of(
    document: dict[str, Any],
    patient_key: str,
    merged_into: str | None = None,
    updated_at: datetime | None = None,
) -> PatientRecord:
    born = document.get("birth_date")
    return PatientRecord(
        patient_key=patient_key,
        family_name=document.get("family_name", ""),
        given_name=document.get("given_name", ""),
        middle_name=document.get("middle_name", ""),
        birth_date=date.fromisoformat(born) if born else None,
        sex=document.get("sex", ""),
        identifiers=tuple(PatientIdentifier(**i) for i in document.get("identifiers", ())),
        phones=tuple(document.get("phones", ())),
        address=document.get("address", ""),
        language=document.get("language", ""),
        pcp=document.get("pcp", ""),
        caregivers=tuple(NextOfKin(**k) for k in document.get("caregivers", ())),
        merged_from=tuple(document.get("merged_from", ())),
        previous_identifiers=tuple(
            PatientIdentifier(**i) for i in document.get("previous_identifiers", ())
        ),
        merged_into=merged_into,
        updated_at=updated_at,
    )


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parsed(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def encounter_document(details: EncounterDetails, as_of: datetime | None) -> dict[str, Any]:
    """What is sealed for an encounter row, with the newest event applied (`as_of`)."""
    return {
        "principal_diagnosis": details.principal_diagnosis,
        "principal_diagnosis_text": details.principal_diagnosis_text,
        "unit": details.unit,
        "admitted_at": _time(details.admitted_at),
        "discharged_at": _time(details.discharged_at),
        "disposition": details.disposition,
        "as_of": _time(as_of),
    }


def encounter_of(
    document: dict[str, Any], transition_id: str, patient_key: str
) -> tuple[EncounterDetails, datetime | None]:
    details = EncounterDetails(
        transition_id=transition_id,
        patient_key=patient_key,
        principal_diagnosis=document.get("principal_diagnosis", ""),
        principal_diagnosis_text=document.get("principal_diagnosis_text", ""),
        unit=document.get("unit", ""),
        admitted_at=_parsed(document.get("admitted_at")),
        discharged_at=_parsed(document.get("discharged_at")),
        disposition=document.get("disposition", ""),
    )
    return details, _parsed(document.get("as_of"))
