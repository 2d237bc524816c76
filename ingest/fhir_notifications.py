"""Da Vinci Unsolicited Notifications (FHIR R4) to the AdtEvent the HL7 v2 path builds.

A `$process-message` Bundle is validated with fhir.resources' R4B models, then read as the
JSON it is: the first entry a MessageHeader whose `eventCoding` names the event and whose
`focus` is the Encounter; the Encounter's `subject` a Patient in the Bundle; Conditions that
point at the Encounter its diagnoses. How the identifiers map onto carebridge's keys (so that
the same visit over HL7 v2 is the same encounter):

- facility (MSH-4): the `MessageHeader.sender` Organization's identifier of type FI (HL7
  table 0203, facility id), else its first; without a sender, the Encounter's
  `serviceProvider` Organization the same way.
- visit number (PV1-19): the Encounter's identifier of type VN, else its first.
- patient identifiers (PID-3): every `Patient.identifier`; the assigning authority (CX.4)
  is `assigner.identifier.value`, else `assigner.display`, else `system`; the type its
  first `type.coding` code (MR ...), as the HL7 v2-to-FHIR mapping writes them.

Nothing here is logged: the Bundle is PHI. Refusals name the element at fault, not its value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from schemas.adt import AdtEvent, MessageHeader, NextOfKin, PatientIdentifier

EVENT_SYSTEM = "http://hl7.org/fhir/us/davinci-alerts/CodeSystem/notification-event"
# The Da Vinci events and the HL7 v2 trigger events whose semantics they carry.
EVENTS = {
    "notification-admit": "A01",
    "notification-discharge": "A03",
    "notification-transfer": "A02",
}
NUBC_SYSTEM = "http://www.nubc.org/patient-discharge"
FHIR_DISPOSITION_SYSTEM = "http://terminology.hl7.org/CodeSystem/discharge-disposition"
# FHIR's own discharge-disposition codes as the UB-04 (NUBC) codes PV1-36 carries.
FHIR_DISPOSITIONS = {
    "home": "01",
    "alt-home": "01",
    "other-hcf": "05",
    "hosp": "51",
    "long": "63",
    "aadvice": "07",
    "exp": "20",
    "psy": "65",
    "rehab": "62",
    "snf": "03",
}
# v3 ActCode encounter classes as PV1-2 patient classes (HL7 table 0004).
PATIENT_CLASSES = {
    "IMP": "I",
    "ACUTE": "I",
    "NONAC": "I",
    "EMER": "E",
    "PRENC": "P",
    "AMB": "O",
    "OBSENC": "O",
    "SS": "O",
    "HH": "O",
    "VR": "O",
    "FLD": "O",
}
# v3 ActPriority as PV1-4 admission types (table 0007): emergency, urgent, elective.
ADMISSION_TYPES = {"EM": "E", "UR": "U", "EL": "C"}
ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10"})
GENDERS = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
IDENTIFIER_TYPES = "http://terminology.hl7.org/CodeSystem/v2-0203"

Json = dict[str, Any]


@dataclass(eq=False)  # not frozen: Python sets __traceback__ on exceptions
class FhirRefusal(Exception):
    """Why a Bundle cannot be acted on: the HTTP status, the OperationOutcome issue code
    (structure, required, not-supported, value, forbidden) and a sentence naming the element."""

    status: int
    code: str
    text: str
    expression: str = ""

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Notification:
    """What the intake needs before mapping: the inbox keys, read from any valid Bundle."""

    bundle: Json
    message_id: str  # MessageHeader.id, else Bundle.id: the idempotency key with the sender
    sender: str  # MessageHeader.source.endpoint: the sending system
    event: str  # the eventCoding code, e.g. notification-discharge


def read(raw: bytes) -> Notification:
    """Parse and validate a `$process-message` body; FhirRefusal (400) when it is not a
    valid R4 message Bundle with a MessageHeader first."""
    try:
        bundle = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FhirRefusal(400, "structure", f"the body is not JSON: {exc.msg}.") from None
    except UnicodeDecodeError:
        raise FhirRefusal(400, "structure", "the body is not JSON in UTF-8.") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirRefusal(400, "structure", "the body must be a Bundle resource.", "Bundle")
    _validate(bundle)
    if bundle.get("type") != "message":
        raise FhirRefusal(
            400, "value", "Bundle.type must be message for $process-message.", "Bundle.type"
        )
    entries = bundle.get("entry") or []
    header = entries[0].get("resource", {}) if entries else {}
    if header.get("resourceType") != "MessageHeader":
        raise FhirRefusal(
            400, "structure", "the first entry must be a MessageHeader.", "Bundle.entry[0]"
        )
    message_id = header.get("id") or bundle.get("id") or ""
    if not message_id:
        raise FhirRefusal(
            400,
            "required",
            "MessageHeader.id (or Bundle.id) is required: it makes a resend the same message.",
            "MessageHeader.id",
        )
    coding = header.get("eventCoding") or {}
    return Notification(
        bundle=bundle,
        message_id=str(message_id),
        sender=str((header.get("source") or {}).get("endpoint", "")),
        event=str(coding.get("code", "")) if coding.get("system") == EVENT_SYSTEM else "",
    )


def _validate(bundle: Json) -> None:
    """The R4B models (fhir.resources): the package's default R5 models refuse R4 Bundles."""
    from fhir.resources.R4B.bundle import Bundle  # imported here: 0.1 s, the intake only

    try:
        Bundle.model_validate(bundle)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'Bundle'}: {error['msg'].rstrip('.')}"
            for error in exc.errors()[:5]
        )
        raise FhirRefusal(
            400, "structure", f"the Bundle is not valid FHIR R4: {problems}."
        ) from None


class _Bundle:
    """The Bundle's resources by fullUrl and by `Type/id`, to resolve references."""

    def __init__(self, bundle: Json) -> None:
        self.resources: list[Json] = []
        self.by_reference: dict[str, Json] = {}
        for entry in bundle.get("entry") or []:
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue
            self.resources.append(resource)
            if entry.get("fullUrl"):
                self.by_reference[entry["fullUrl"]] = resource
            if resource.get("id"):
                self.by_reference[f"{resource['resourceType']}/{resource['id']}"] = resource

    def resolve(self, reference: Json | None, kind: str) -> Json | None:
        target = (reference or {}).get("reference", "")
        found = self.by_reference.get(target)
        if found is None and "/" in target:  # an absolute URL ending in Type/id
            found = self.by_reference.get("/".join(target.rsplit("/", 2)[-2:]))
        return found if found is not None and found.get("resourceType") == kind else None


def to_event(notification: Notification, zone_for: Any) -> AdtEvent:
    """Map a read notification; `zone_for(facility)` gives the zone of times sent without an
    offset. FhirRefusal (400) names what is missing or not supported."""
    bundle = _Bundle(notification.bundle)
    header: Json = bundle.resources[0]
    trigger = EVENTS.get(notification.event)
    if trigger is None:
        raise FhirRefusal(
            400,
            "not-supported",
            f"MessageHeader.eventCoding must be one of {', '.join(EVENTS)} from {EVENT_SYSTEM}.",
            "MessageHeader.eventCoding",
        )
    foci = header.get("focus") or []
    encounter = bundle.resolve(foci[0], "Encounter") if foci else None
    if encounter is None:
        raise FhirRefusal(
            400,
            "required",
            "MessageHeader.focus must reference the Encounter, included in the Bundle.",
            "MessageHeader.focus",
        )
    patient = bundle.resolve(encounter.get("subject"), "Patient")
    if patient is None:
        raise FhirRefusal(
            400,
            "required",
            "Encounter.subject must reference the Patient, included in the Bundle.",
            "Encounter.subject",
        )
    facility = _facility(bundle, header, encounter)
    zone: ZoneInfo = zone_for(facility)
    visit = _preferred_identifier(encounter.get("identifier") or [], "VN")
    if trigger == "A03" and encounter.get("status") != "finished":
        raise FhirRefusal(
            400,
            "value",
            "a discharge notification's Encounter.status must be finished.",
            "Encounter.status",
        )
    if trigger == "A03" and not visit:
        raise FhirRefusal(
            400,
            "required",
            "Encounter.identifier (the visit number) is required for a discharge.",
            "Encounter.identifier",
        )
    period = encounter.get("period") or {}
    sent_at = _instant(notification.bundle.get("timestamp"), zone)
    discharged_at = _instant(period.get("end"), zone)
    if trigger == "A03" and discharged_at is None:
        discharged_at = sent_at  # as PV1-45 falls back to MSH-7
    if trigger == "A03" and discharged_at is None:
        raise FhirRefusal(
            400,
            "required",
            "a discharge needs Encounter.period.end (or Bundle.timestamp).",
            "Encounter.period.end",
        )
    hospitalization = encounter.get("hospitalization") or {}
    diagnoses = _diagnoses(bundle, encounter)
    name = _official_name(patient)
    given = name.get("given") or []
    phones = tuple(
        str(t["value"])
        for t in patient.get("telecom") or []
        if t.get("system") in ("phone", "sms") and t.get("value")
    )
    pcp_ids, pcp_name = _pcp(bundle, patient)
    return AdtEvent(
        header=MessageHeader(
            sending_application=notification.sender[:180],
            sending_facility=facility,
            message_type="ADT",
            trigger_event=trigger,
            control_id=notification.message_id,
        ),
        event_type=trigger,
        facility=facility,
        visit_number=visit,
        visit_number_source="Encounter.identifier" if visit else "",
        patient_identifiers=_patient_identifiers(patient),
        location=_location(bundle, encounter),
        patient_class=PATIENT_CLASSES.get((encounter.get("class") or {}).get("code", ""), ""),
        admission_type=_admission_type(encounter),
        discharge_disposition=_disposition(hospitalization.get("dischargeDisposition")),
        discharged_to=str((hospitalization.get("destination") or {}).get("display", "")),
        admitted_at=_instant(period.get("start"), zone),
        discharged_at=discharged_at if trigger == "A03" else None,
        death_indicator=bool(patient.get("deceasedBoolean") or patient.get("deceasedDateTime")),
        diagnosis_codes=tuple(code for code, _ in diagnoses),
        principal_diagnosis=diagnoses[0][0] if diagnoses else "",
        principal_diagnosis_text=diagnoses[0][1] if diagnoses else "",
        family_name=str(name.get("family", "")),
        given_name=str(given[0]) if given else "",
        middle_name=str(given[1]) if len(given) > 1 else "",
        birth_date=_birth_date(patient.get("birthDate")),
        sex=GENDERS.get(str(patient.get("gender", "")), ""),
        address=_address(patient),
        contact_numbers=phones,
        language=_language(patient),
        next_of_kin=_contacts(patient),
        pcp_ids=pcp_ids,
        pcp_name=pcp_name,
        occurred_at=sent_at,
    )


def _codes(concept: Json | None) -> list[Json]:
    return list((concept or {}).get("coding") or [])


def _preferred_identifier(identifiers: list[Json], type_code: str) -> str:
    """The value of the identifier of that v2-0203 type, else of the first with a value."""
    valued = [i for i in identifiers if i.get("value")]
    typed = [i for i in valued if any(c.get("code") == type_code for c in _codes(i.get("type")))]
    chosen = (typed or valued or [{}])[0]
    return str(chosen.get("value", ""))


def _facility(bundle: _Bundle, header: Json, encounter: Json) -> str:
    for reference in (header.get("sender"), encounter.get("serviceProvider")):
        organization = bundle.resolve(reference, "Organization")
        if organization is not None:
            found = _preferred_identifier(organization.get("identifier") or [], "FI")
            if found:
                return found
    raise FhirRefusal(
        400,
        "required",
        "MessageHeader.sender must reference an Organization in the Bundle with an identifier: "
        "the facility code (MSH-4 over HL7 v2).",
        "MessageHeader.sender",
    )


def _patient_identifiers(patient: Json) -> tuple[PatientIdentifier, ...]:
    found = []
    for identifier in patient.get("identifier") or []:
        if not identifier.get("value"):
            continue
        assigner = identifier.get("assigner") or {}
        authority = (
            (assigner.get("identifier") or {}).get("value")
            or assigner.get("display")
            or identifier.get("system", "")
        )
        types = _codes(identifier.get("type"))
        found.append(
            PatientIdentifier(
                id=str(identifier["value"]),
                assigning_authority=str(authority),
                type_code=str(types[0].get("code", "")) if types else "",
            )
        )
    return tuple(found)


def _instant(value: Any, zone: ZoneInfo) -> datetime | None:
    """A FHIR dateTime/instant; a date alone is its midnight in `zone`."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None  # a year or year-month alone: no usable time
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def _birth_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None  # a year alone is no birth date (as for PID-7)


def _disposition(concept: Json | None) -> str:
    """PV1-36: a NUBC code (two digits, as UB-04 writes them), or FHIR's own code mapped."""
    for coding in _codes(concept):
        code = str(coding.get("code", ""))
        if coding.get("system") == NUBC_SYSTEM and code:
            return code.zfill(2) if code.isdigit() else code
        if coding.get("system") == FHIR_DISPOSITION_SYSTEM and code in FHIR_DISPOSITIONS:
            return FHIR_DISPOSITIONS[code]
    return ""


def _admission_type(encounter: Json) -> str:
    for coding in _codes(encounter.get("priority")):
        if coding.get("code") in ADMISSION_TYPES:
            return ADMISSION_TYPES[coding["code"]]
    admit_source = (encounter.get("hospitalization") or {}).get("admitSource")
    return "E" if any(c.get("code") == "emd" for c in _codes(admit_source)) else ""


def _location(bundle: _Bundle, encounter: Json) -> str:
    for entry in encounter.get("location") or []:
        location = bundle.resolve(entry.get("location"), "Location")
        if location is not None and location.get("name"):
            return str(location["name"])[:200]
    return ""


def _diagnoses(bundle: _Bundle, encounter: Json) -> list[tuple[str, str]]:
    """ICD-10 codes of the Encounter's diagnoses (rank 1 first) and of the Conditions that
    point at it; codes of other systems are left out (LACE reads ICD-10)."""
    ranked = sorted(encounter.get("diagnosis") or [], key=lambda d: d.get("rank", 99))
    conditions = [bundle.resolve(d.get("condition"), "Condition") for d in ranked]
    own = {f"Encounter/{encounter.get('id')}"}
    pointing = [
        r
        for r in bundle.resources
        if r.get("resourceType") == "Condition"
        and (r.get("encounter") or {}).get("reference") in own | _full_urls(bundle, encounter)
    ]
    found: dict[str, str] = {}
    for condition in [c for c in conditions if c is not None] + pointing:
        for coding in _codes(condition.get("code")):
            if coding.get("system") in ICD10_SYSTEMS and coding.get("code"):
                found.setdefault(str(coding["code"]), str(coding.get("display", "")))
    return list(found.items())


def _full_urls(bundle: _Bundle, resource: Json) -> set[str]:
    return {url for url, found in bundle.by_reference.items() if found is resource}


def _official_name(patient: Json) -> Json:
    names = patient.get("name") or [{}]
    official = [n for n in names if n.get("use") == "official"]
    chosen: Json = (official or names)[0]
    return chosen


def _address(patient: Json) -> str:
    addresses = patient.get("address") or []
    if not addresses:
        return ""
    a = addresses[0]
    street = " ".join(str(line) for line in a.get("line") or [])
    state_zip = " ".join(p for p in (a.get("state", ""), a.get("postalCode", "")) if p)
    return ", ".join(p for p in (street, a.get("city", ""), state_zip, a.get("country", "")) if p)


def _language(patient: Json) -> str:
    spoken = patient.get("communication") or []
    preferred = [c for c in spoken if c.get("preferred")] or spoken
    if not preferred:
        return ""
    concept = preferred[0].get("language") or {}
    codes = _codes(concept)
    return str(codes[0].get("code", "")) if codes else str(concept.get("text", ""))


def _contacts(patient: Json) -> tuple[NextOfKin, ...]:
    found = []
    for contact in patient.get("contact") or []:
        name = contact.get("name") or {}
        full = " ".join([*(str(g) for g in name.get("given") or []), str(name.get("family", ""))])
        relationships = [c for r in contact.get("relationship") or [] for c in _codes(r)]
        phones = [t for t in contact.get("telecom") or [] if t.get("system") == "phone"]
        kin = NextOfKin(
            name=full.strip(),
            relationship=str(relationships[0].get("code", "")) if relationships else "",
            phone=str(phones[0].get("value", "")) if phones else "",
        )
        if kin.name or kin.relationship or kin.phone:
            found.append(kin)
    return tuple(found)


def _pcp(bundle: _Bundle, patient: Json) -> tuple[tuple[str, ...], str]:
    """Patient.generalPractitioner (PD1-4): the Practitioners' identifiers and the first name."""
    ids: list[str] = []
    name = ""
    for reference in patient.get("generalPractitioner") or []:
        practitioner = bundle.resolve(reference, "Practitioner")
        if practitioner is None:
            continue
        ids += [str(i["value"]) for i in practitioner.get("identifier") or [] if i.get("value")]
        if not name:
            person = _official_name(practitioner)
            given = " ".join(str(g) for g in person.get("given") or [])
            name = " ".join(p for p in (given, str(person.get("family", ""))) if p)
    return tuple(dict.fromkeys(ids)), name
