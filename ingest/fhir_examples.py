"""A Da Vinci discharge notification Bundle about a fictitious patient, timed from `now`.

Rebuilt entry by entry from the Da Vinci Unsolicited Notifications IG's published example
`discharge-notification-message-bundle-01` (MessageHeader, US Core Encounter, Patient,
Location, Practitioner, Organization, Condition, Coverage, payer Organization), with the
patient of `carebridge example a03` (ingest/example_messages.py), times relative to now,
ICD-10-CM diagnoses, and identifiers typed so they key the same visit as the HL7 v2 A03 of
the same facility, visit number and MRN (ingest/fhir_notifications.py says how).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from ingest.example_messages import (
    DEFAULT_FACILITY,
    JANE,
    JANE_SPOUSE,
    fresh_mrn,
    mrn_of_visit,
)
from ingest.fhir_notifications import EVENT_SYSTEM, IDENTIFIER_TYPES, NUBC_SYSTEM

PROFILES = "http://hl7.org/fhir/us/davinci-alerts/StructureDefinition/"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _typed(code: str, value: str, **more: Any) -> dict[str, Any]:
    return {
        "type": {"coding": [{"system": IDENTIFIER_TYPES, "code": code}]},
        "value": value,
        **more,
    }


def _entry(url: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": url, "resource": {"id": url.removeprefix("urn:uuid:"), **resource}}


def discharge_bundle(
    now: datetime,
    *,
    facility: str = DEFAULT_FACILITY,
    visit: str | None = None,
    mrn: str | None = None,
    discharged: timedelta = timedelta(hours=-2),
    stay: timedelta = timedelta(days=4),
    disposition: str = "1",
    message_id: str | None = None,
    event: str = "notification-discharge",
) -> dict[str, Any]:
    """`discharged`: the discharge time from `now`; `disposition` a NUBC code as the IG's
    example writes it (1, without the UB-04 leading zero); the MRN, unless given, is the
    visit's own (as `carebridge example a03 --visit` writes it) or fresh."""
    header, encounter, patient, location, doctor, hospital, condition, coverage, payer = (
        _urn() for _ in range(9)
    )
    discharged_at = now + discharged
    person = JANE
    born = f"{person.birth_date[:4]}-{person.birth_date[4:6]}-{person.birth_date[6:]}"
    street, _, city, state, postal = person.address.split("^")
    entries = [
        _entry(
            header,
            {
                "resourceType": "MessageHeader",
                "meta": {
                    "profile": [
                        f"{PROFILES}notifications-messageheader",
                        f"{PROFILES}discharge-notification-messageheader",
                    ]
                },
                "eventCoding": {
                    "system": EVENT_SYSTEM,
                    "code": event,
                    "display": "Discharge Notification",
                },
                "destination": [
                    {"name": "carebridge", "endpoint": "https://carebridge.example/fhir"}
                ],
                "sender": {"reference": hospital, "display": "General Hospital"},
                "author": {"reference": doctor},
                "responsible": {"reference": hospital},
                "source": {
                    "name": "General Hospital ADT",
                    "software": "example EHR",
                    "endpoint": f"https://ehr.example/{facility.lower()}/fhir",
                },
                "focus": [{"reference": encounter}],
            },
        ),
        _entry(
            encounter,
            {
                "resourceType": "Encounter",
                "meta": {
                    "profile": [
                        f"{PROFILES}adt-notification-encounter",
                        f"{US_CORE}us-core-encounter",
                    ]
                },
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "IMP",
                },
                "type": [{"text": "Inpatient stay"}],
                "identifier": [
                    _typed("VN", visit or f"V{uuid.uuid4().hex[:10]}", system="urn:example:visit")
                ],
                "subject": {"reference": patient},
                "participant": [{"individual": {"reference": doctor}}],
                "period": {
                    "start": (discharged_at - stay).isoformat(timespec="seconds"),
                    "end": discharged_at.isoformat(timespec="seconds"),
                },
                "hospitalization": {
                    "dischargeDisposition": {
                        "coding": [{"system": NUBC_SYSTEM, "code": disposition}],
                    }
                },
                "location": [{"location": {"reference": location}}],
                "serviceProvider": {"reference": hospital},
            },
        ),
        _entry(
            patient,
            {
                "resourceType": "Patient",
                "meta": {"profile": [f"{US_CORE}us-core-patient"]},
                "identifier": [
                    _typed(
                        "MR",
                        mrn or (mrn_of_visit(facility, visit) if visit else fresh_mrn()),
                        system="urn:example:mrn",
                        assigner={"display": facility},
                    )
                ],
                "name": [
                    {
                        "use": "official",
                        "family": person.family.title(),
                        "given": [person.given.title(), person.middle],
                    }
                ],
                "telecom": [{"system": "phone", "value": person.phone, "use": "home"}],
                "gender": "female",
                "birthDate": born,
                "address": [
                    {
                        "line": [street.title()],
                        "city": city.title(),
                        "state": state,
                        "postalCode": postal,
                        "country": "US",
                    }
                ],
                "communication": [
                    {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]}}
                ],
                "contact": [
                    {
                        "relationship": [{"coding": [{"code": "SPO", "display": "Spouse"}]}],
                        "name": {"family": JANE_SPOUSE.family.title(), "given": ["John"]},
                        "telecom": [{"system": "phone", "value": JANE_SPOUSE.phone}],
                    }
                ],
            },
        ),
        _entry(
            location,
            {
                "resourceType": "Location",
                "meta": {"profile": [f"{US_CORE}us-core-location"]},
                "status": "active",
                "name": "4 West",
                "managingOrganization": {"reference": hospital},
            },
        ),
        _entry(
            doctor,
            {
                "resourceType": "Practitioner",
                "meta": {"profile": [f"{US_CORE}us-core-practitioner"]},
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "9999990142"}],
                "name": [{"family": "Kildare", "given": ["James"], "prefix": ["Dr."]}],
            },
        ),
        _entry(
            hospital,
            {
                "resourceType": "Organization",
                "meta": {"profile": [f"{US_CORE}us-core-organization"]},
                "active": True,
                "identifier": [_typed("FI", facility, system="urn:example:facility")],
                "name": "General Hospital",
            },
        ),
        _entry(
            condition,
            {
                "resourceType": "Condition",
                "meta": {"profile": [f"{PROFILES}adt-notification-condition"]},
                "category": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                "code": "encounter-diagnosis",
                            }
                        ]
                    }
                ],
                "code": {
                    "coding": [
                        {"system": ICD10CM, "code": "J18.9", "display": "Pneumonia, unspecified"}
                    ]
                },
                "subject": {"reference": patient},
                "encounter": {"reference": encounter},
            },
        ),
        _entry(
            coverage,
            {
                "resourceType": "Coverage",
                "status": "active",
                "beneficiary": {"reference": patient},
                "payor": [{"reference": payer}],
            },
        ),
        _entry(payer, {"resourceType": "Organization", "name": "Example Health Plan"}),
    ]
    return {
        "resourceType": "Bundle",
        "id": message_id or str(uuid.uuid4()),
        "meta": {"profile": [f"{PROFILES}notifications-bundle"]},
        "type": "message",
        "timestamp": now.isoformat(timespec="seconds"),
        "entry": entries,
    }
