"""Realistic ADT messages about fictitious people, timed from a given `now`.

The README walk-through, `carebridge example`, the tests and the benchmarks build their
messages here, so none of them carries a date that ages: a discharge "2 hours ago" is two
hours before whatever `now` is. People, MRNs and visit numbers are invented; phone numbers
are in 555-0100..0199, the range reserved for fiction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo

# A time as an aware datetime, or ER7 text written as is (tests send empty or broken ones).
Stamp = datetime | str

DEFAULT_FACILITY = "GENHOSP"
DEFAULT_DISCHARGED = "-2h"
ATTENDING = "D0142^KILDARE^JAMES^^^^MD"
_STRUCTURES = {"A03": "ADT_A03", "A11": "ADT_A09", "A12": "ADT_A12", "A40": "ADT_A39"}
_DURATION = re.compile(r"(\d+)([wdhm])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}


@dataclass(frozen=True)
class Person:
    """PID fields of a patient, or NK1 fields of a next of kin (relationship set)."""

    family: str
    given: str
    middle: str = ""
    birth_date: str = ""  # YYYYMMDD
    sex: str = ""
    phone: str = ""  # 10 digits
    address: str = ""  # XAD: street^^city^state^zip
    relationship: str = ""  # NK1-3, e.g. SPO^Spouse

    @property
    def name(self) -> str:
        return "^".join((self.family, self.given, self.middle)).rstrip("^")


@dataclass(frozen=True)
class Diagnosis:
    code: str  # ICD-10
    text: str


@dataclass(frozen=True)
class Adt:
    """Every field the builder writes: `build` fills it for a kind, `replace` adjusts it,
    `render` writes it. Fields left empty are left out of the message."""

    trigger: str
    facility: str
    visit: str
    mrn: str
    control_id: str
    sent_at: Stamp  # MSH-7 and EVN-2
    person: Person
    admitted_at: Stamp | None = None  # PV1-44
    discharged_at: Stamp | None = None  # PV1-45
    patient_class: str = "I"  # PV1-2
    location: str = "4W^401^A"  # PV1-3 point of care, room, bed (the facility is added)
    admission_type: str = "E"  # PV1-4
    attending: str = ATTENDING  # PV1-7 and PV1-17
    hospital_service: str = "MED"  # PV1-10
    disposition: str = ""  # PV1-36
    diagnoses: tuple[Diagnosis, ...] = ()
    next_of_kin: tuple[Person, ...] = ()
    version: str = "2.5.1"
    sending_application: str = "EPIC"
    zone: tzinfo = UTC  # times are written in this zone, with its UTC offset


@dataclass(frozen=True)
class Kind:
    description: str
    trigger: str
    person: Person
    disposition: str = ""
    stay: timedelta = timedelta(days=4)
    location: str = "4W^401^A"
    diagnoses: tuple[Diagnosis, ...] = ()
    next_of_kin: tuple[Person, ...] = ()


JANE = Person("DOE", "JANE", "Q", "19480312", "F", "4135550142", "12 ELM ST^^SPRINGFIELD^MA^01101")
JANE_SPOUSE = Person("DOE", "JOHN", phone="4135550143", relationship="SPO^Spouse")
MARIA = Person("ROE", "MARIA", "", "19410922", "F", "4135550177", "8 OAK AVE^^HOLYOKE^MA^01040")
MARIA_DAUGHTER = Person("ROE", "LUCIA", phone="4135550178", relationship="DTR^Daughter")
RICHARD = Person("ROE", "RICHARD", "", "19590704", "M", "4135550118", "3 PINE RD^^WARE^MA^01082")
SAMUEL = Person("POE", "SAMUEL", "T", "19720215", "M", "4135550163")
EDITH = Person("MOE", "EDITH", "", "19330530", "F", "4135550105", "40 MAPLE ST^^AMHERST^MA^01002")

HIGH_RISK_DIAGNOSES = (
    Diagnosis("I50.9", "Heart failure, unspecified"),
    Diagnosis("J44.9", "Chronic obstructive pulmonary disease, unspecified"),
    Diagnosis("E11.22", "Type 2 diabetes with diabetic chronic kidney disease"),
)

KINDS: dict[str, Kind] = {
    "a03": Kind("discharge home (PV1-36 01)", "A03", JANE, "01", next_of_kin=(JANE_SPOUSE,)),
    "a03-home-health": Kind(
        "discharge home with home health (06)", "A03", RICHARD, "06", timedelta(days=5), "3E^310^B"
    ),
    "a03-high-risk": Kind(
        "discharge home, LACE high: 10-day emergency stay, heart failure, COPD, diabetes with CKD",
        "A03",
        MARIA,
        "01",
        timedelta(days=10),
        "5E^512^B",
        HIGH_RISK_DIAGNOSES,
        (MARIA_DAUGHTER,),
    ),
    "a03-ama": Kind("left against medical advice (07)", "A03", SAMUEL, "07", timedelta(days=2)),
    "a03-snf": Kind(
        "discharge to a skilled nursing facility (03)", "A03", EDITH, "03", timedelta(days=6)
    ),
    "a08": Kind(
        "patient update for a visit: a new phone number",
        "A08",
        replace(JANE, phone="4135550199"),
        "01",
    ),
    "a13": Kind("cancel discharge for a visit (back in bed)", "A13", JANE),
}


def parse_offset(text: str) -> timedelta:
    """A signed offset from now: `-3h`, `-2d`, `+0h`, `-1d6h`, `-90m` (w, d, h, m) or `now`."""
    spec = text.strip().lower()
    if spec == "now":
        return timedelta()
    body = spec[1:]
    if spec[:1] not in ("+", "-") or not body or _DURATION.sub("", body):
        raise ValueError(f"not an offset like -3h, -2d, +0h or -1d6h: {text!r}")
    total = sum(
        (timedelta(**{_UNITS[unit]: int(amount)}) for amount, unit in _DURATION.findall(body)),
        timedelta(),
    )
    return -total if spec[0] == "-" else total


def fresh_control_id() -> str:
    return "EX" + uuid.uuid4().hex[:18].upper()


def fresh_visit() -> str:
    return "EXV" + uuid.uuid4().hex[:10].upper()


def fresh_mrn() -> str:
    return f"EX{secrets.randbelow(10**7):07d}"


def mrn_of_visit(facility: str, visit: str) -> str:
    """The example MRN of a given visit: the same for every kind, so `example a08 --visit V`
    names the patient `example a03 --visit V` discharged."""
    digest = hashlib.sha256(f"{facility}\x1f{visit}".encode()).hexdigest()
    return f"EX{int(digest[:12], 16) % 10**7:07d}"


def build(
    kind: str,
    *,
    now: datetime | None = None,
    discharged: timedelta | str = DEFAULT_DISCHARGED,
    facility: str = DEFAULT_FACILITY,
    visit: str | None = None,
    mrn: str | None = None,
    control_id: str | None = None,
    zone: tzinfo = UTC,
) -> Adt:
    """A message of `kind` (see KINDS), sent at `now` (default: the current UTC time, to the
    second), discharged at `now + discharged` and admitted the kind's stay before that.
    Control id and visit number are fresh unless given; the MRN is the visit's own when a
    visit is given (mrn_of_visit), else fresh."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    spec = KINDS[kind]
    sent = (now or datetime.now(UTC)).replace(microsecond=0)
    if sent.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    discharged_at = sent + (parse_offset(discharged) if isinstance(discharged, str) else discharged)
    return Adt(
        trigger=spec.trigger,
        facility=facility,
        visit=visit or fresh_visit(),
        mrn=mrn or (mrn_of_visit(facility, visit) if visit else fresh_mrn()),
        control_id=control_id or fresh_control_id(),
        sent_at=sent,
        person=spec.person,
        admitted_at=discharged_at - spec.stay,
        # A13 cancels the discharge: the visit is open again, with no discharge time.
        discharged_at=None if spec.trigger == "A13" else discharged_at,
        location=spec.location,
        disposition=spec.disposition,
        diagnoses=spec.diagnoses,
        next_of_kin=spec.next_of_kin,
        zone=zone,
    )


def render(adt: Adt, separator: str = "\r") -> str:
    """The message in ER7, each segment ended by `separator` (CR, as feeds send it)."""
    structure = _STRUCTURES.get(adt.trigger, "ADT_A01")
    sent = _stamp(adt.sent_at, adt.zone)
    segments = [
        f"MSH|^~\\&|{adt.sending_application}|{adt.facility}|CAREBRIDGE|CB|{sent}||"
        f"ADT^{adt.trigger}^{structure}|{adt.control_id}|P|{adt.version}",
        f"EVN|{adt.trigger}|{sent}",
        _segment(
            "PID",
            {
                1: "1",
                3: f"{adt.mrn}^^^{adt.facility}^MR",
                5: adt.person.name,
                7: adt.person.birth_date,
                8: adt.person.sex,
                11: adt.person.address,
                13: _phone(adt.person.phone),
            },
        ),
        *(
            _segment("NK1", {1: str(n), 2: kin.name, 3: kin.relationship, 5: _phone(kin.phone)})
            for n, kin in enumerate(adt.next_of_kin, 1)
        ),
        _segment(
            "PV1",
            {
                1: "1",
                2: adt.patient_class,
                3: f"{adt.location}^{adt.facility}",
                4: adt.admission_type,
                7: adt.attending,
                10: adt.hospital_service,
                17: adt.attending,
                19: f"{adt.visit}^^^{adt.facility}^VN",
                36: adt.disposition,
                44: _stamp(adt.admitted_at, adt.zone),
                45: _stamp(adt.discharged_at, adt.zone),
            },
        ),
        *(f"DG1|{n}||{d.code}^{d.text}^I10" for n, d in enumerate(adt.diagnoses, 1)),
    ]
    return separator.join(segments) + separator


def _stamp(value: Stamp | None, zone: tzinfo) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return value.astimezone(zone).strftime("%Y%m%d%H%M%S%z")


def _phone(digits: str) -> str:
    """XTN with the area code and local number in components 6 and 7."""
    return f"^PRN^PH^^1^{digits[:3]}^{digits[3:]}" if digits else ""


def _segment(name: str, fields: dict[int, str]) -> str:
    """A segment with its fields at their positions; trailing empty fields left out."""
    last = max((n for n, value in fields.items() if value), default=0)
    return "|".join([name, *(fields.get(n, "") for n in range(1, last + 1))])
