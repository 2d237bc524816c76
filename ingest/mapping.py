"""Maps a parsed ER7 message to the schemas ADT event (the one place that knows HL7 fields)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import hl7

from ingest import er7, feed_mapping
from ingest.errors import (
    SEGMENT_SEQUENCE_ERROR,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_VERSION,
    HL7Error,
)
from schemas.adt import (
    AckCode,
    AdtEvent,
    EncodingCharacters,
    MergedPatient,
    MessageHeader,
    NextOfKin,
    PatientIdentifier,
)

# ROL-3 role codes that name the patient's primary care provider.
PCP_ROLES = frozenset({"PP", "PCP"})
# A discharge and its cancellation need a visit number: a transition is keyed by it (never
# guess the visit). Other events without one are recorded and used for what they can.
VISIT_REQUIRED = frozenset({"A03", "A13"})
# Chapter 3 structures that require PV1 (ADT_A01, A02, A03, A05, A06, A09, A12, A15, A16,
# A17, A18, A21, A38, A45, A50, A52, A54, A61); the merge structures (ADT_A30, A39, A43)
# and A60 do not. A20 (bed status) has no patient at all.
PV1_REQUIRED = frozenset(
    {f"A{n:02d}" for n in (*range(1, 19), *range(21, 30), 31, 32, 33, 37, 38, 45, 50, 51)}
    | {"A52", "A53", "A54", "A55", "A61", "A62"}
)
NO_PATIENT = frozenset({"A20"})
REQUIRED_FIELDS = (
    ("PID", 3, "patient identifier list"),
    ("PID", 5, "patient name"),
    ("PV1", 2, "patient class"),
)
DEFAULT_VISIT_SOURCES = ("PV1-19", "PID-18", "PV1-50")
# ADT, and the feed's scheduling (SIU) and document (MDM) messages (ingest/feed_mapping.py).
MESSAGE_TYPES = ("ADT", "SIU", "MDM")
# Merges of patient identifiers: each MRG-1 patient becomes the PID-3 patient of its group.
# A34 and A36 (v2.3's merge patient information), A39 (merge person) and A40 (merge patient),
# whose PID/MRG groups repeat in ADT_A39; A47 (change patient identifier list) re-keys the
# MRG-1 identifier to PID-3: not two patients, but the same effect on carebridge's keys.
PATIENT_MERGES = frozenset({"A34", "A36", "A39", "A40", "A47"})
# Merges of accounts (MRG-3 into PID-18): A35, and A36 together with the patient.
ACCOUNT_MERGES = frozenset({"A35", "A36"})
SUPPORTED_VERSIONS = (
    "2.2",
    "2.3",
    "2.3.1",
    "2.4",
    "2.5",
    "2.5.1",
    "2.6",
    "2.7",
    "2.7.1",
    "2.8",
    "2.8.1",
    "2.8.2",
    "2.9",
)


def _hd(message: hl7.Message, field: int) -> str:
    """An HD field's namespace id, else its universal id (`^1.2.840.9^ISO` names a sender)."""
    return er7.value(message, "MSH", field) or er7.value(message, "MSH", field, component=2)


def header(message: hl7.Message) -> MessageHeader:
    """MSH fields; never fails on a message python-hl7 could parse (the ACK needs them)."""
    return MessageHeader(
        encoding=er7.encoding_characters(message),
        sending_application=_hd(message, 3),
        sending_facility=_hd(message, 4),
        receiving_application=_hd(message, 5),
        receiving_facility=_hd(message, 6),
        sending_application_hd=er7.raw_field(message, "MSH", 3),
        sending_facility_hd=er7.raw_field(message, "MSH", 4),
        receiving_application_hd=er7.raw_field(message, "MSH", 5),
        receiving_facility_hd=er7.raw_field(message, "MSH", 6),
        message_type=er7.value(message, "MSH", 9, component=1),
        trigger_event=er7.value(message, "MSH", 9, component=2) or er7.value(message, "EVN", 1),
        control_id=er7.value(message, "MSH", 10),
        processing_id=er7.value(message, "MSH", 11),
        version=er7.value(message, "MSH", 12),
        accept_ack_type=er7.value(message, "MSH", 15),
        application_ack_type=er7.value(message, "MSH", 16),
        character_set=er7.value(message, "MSH", 18),
    )


def salvage_header(raw: bytes) -> MessageHeader | None:
    """The MSH fields of a message that does not parse (odd MSH-2, say), read by splitting
    its first segment on MSH-1: enough for its refusal to echo MSH-10 and address the
    sender. None when not even the field separator and MSH-10 can be read."""
    text = er7.normalise(er7.decode(raw))
    if not text.startswith("MSH") or len(text) < 8 or not er7.is_delimiter(text[3]):
        return None
    separator = text[3]
    fields = text.split("\r", 1)[0].split(separator)

    def field(number: int) -> str:  # fields[1] is MSH-2: MSH-n is fields[n - 1]
        return fields[number - 1] if len(fields) >= number else ""

    def first(number: int) -> str:
        return field(number).split("^")[0]

    if not field(10) or separator in "^~\\&":
        return None
    return MessageHeader(
        encoding=EncodingCharacters(field=separator),
        sending_application_hd=field(3),
        sending_facility_hd=field(4),
        sending_application=first(3),
        sending_facility=first(4),
        receiving_application=first(5),
        receiving_facility=first(6),
        message_type=first(9),
        trigger_event=field(9).split("^")[1] if "^" in field(9) else "",
        control_id=field(10),
        processing_id=first(11),
        version=first(12),
    )


def _identifiers(
    message: hl7.Message, segment: str, field: int, occurrence: int = 1
) -> tuple[PatientIdentifier, ...]:
    """Every CX repetition of PID-3 / MRG-1 (of the occurrence-th such segment): id,
    assigning authority, identifier type."""
    found = []
    count = er7.repetitions(message, segment, field, occurrence=occurrence)
    for rep in range(1, count + 1):
        ident = er7.value(message, segment, field, rep, 1, occurrence=occurrence)
        if ident:
            found.append(
                PatientIdentifier(
                    id=ident,
                    assigning_authority=er7.value(
                        message, segment, field, rep, 4, occurrence=occurrence
                    ),
                    type_code=er7.value(message, segment, field, rep, 5, occurrence=occurrence),
                )
            )
    return tuple(found)


def _merge_pairs(message: hl7.Message) -> tuple[list[tuple[int, int]], list[int]]:
    """(PID occurrence, MRG occurrence) for every MRG, paired with the PID before it (0:
    none), and the PIDs no MRG follows. Merge messages repeat the group PID, [PD1], MRG,
    [PV1] (ADT_A39; ADT_A30 has one group)."""
    pairs: list[tuple[int, int]] = []
    unpaired: list[int] = []
    pid = mrg = 0
    paired = True
    for segment in message:
        name = str(segment[0])
        if name == "PID":
            if not paired:
                unpaired.append(pid)
            pid, paired = pid + 1, False
        elif name == "MRG":
            mrg, paired = mrg + 1, True
            pairs.append((pid, mrg))
    if not paired:
        unpaired.append(pid)
    return pairs, unpaired


def _merged_patient(message: hl7.Message, pid: int, mrg: int) -> MergedPatient:
    return MergedPatient(
        surviving=_identifiers(message, "PID", 3, pid) if pid else (),
        merged=_identifiers(message, "MRG", 1, mrg),
        surviving_account=er7.value(message, "PID", 18, occurrence=pid) if pid else "",
        merged_account=er7.value(message, "MRG", 3, occurrence=mrg),
    )


def _merges(message: hl7.Message, trigger: str) -> tuple[MergedPatient, ...]:
    """Every PID/MRG group; a patient merge needs MRG-1 and PID-3 in each of them."""
    pairs, unpaired = _merge_pairs(message)
    if trigger in PATIENT_MERGES and not pairs:
        raise HL7Error(
            AckCode.ERROR, f"{trigger} needs MRG-1, the identifier merged away", "MRG", 1
        )
    if trigger in PATIENT_MERGES and unpaired:
        raise HL7Error(
            AckCode.ERROR,
            f"{trigger}: PID {unpaired[0]} has no MRG after it (each group is PID, MRG)",
            "PID",
            3,
            SEGMENT_SEQUENCE_ERROR,
            sequence=unpaired[0],
        )
    groups = []
    for pid, mrg in pairs:
        group = _merged_patient(message, pid, mrg)
        if trigger in PATIENT_MERGES and not group.merged:
            raise HL7Error(
                AckCode.ERROR,
                f"{trigger} needs MRG-1, the identifier merged away",
                "MRG",
                1,
                sequence=mrg,
            )
        if trigger in PATIENT_MERGES and not group.surviving:
            raise HL7Error(
                AckCode.ERROR,
                f"{trigger} needs PID-3, the surviving identifier, before each MRG",
                "PID",
                3,
                sequence=max(pid, 1),
            )
        groups.append(group)
    return tuple(groups)


def _check_structure(message: hl7.Message, trigger: str) -> None:
    """The segments and fields every ADT structure of chapter 3 requires (EVN, PID with
    PID-3 and PID-5; PV1 with PV1-2 where the structure has it): a message without them is
    refused with AE and kept, never acknowledged as if it said something."""
    needed = ("EVN", "PID", "PV1") if trigger in PV1_REQUIRED else ("EVN", "PID")
    if trigger in NO_PATIENT:
        return
    for name in needed:
        if not er7.has_segment(message, name):
            raise HL7Error(
                AckCode.ERROR,
                f"{name} segment is required in an ADT^{trigger}",
                name,
                0,
                SEGMENT_SEQUENCE_ERROR,
            )
    for segment, field, what in REQUIRED_FIELDS:
        if segment in needed and not er7.value(message, segment, field):
            raise HL7Error(AckCode.ERROR, f"{segment}-{field} {what} is required", segment, field)


def _visit_number(message: hl7.Message, sources: tuple[str, ...]) -> tuple[str, str]:
    """The first non-empty of the site's visit-number fields, and which one it was."""
    for source in sources:
        segment, _, number = source.partition("-")
        found = er7.value(message, segment, int(number))
        if found:
            return found, source
    return "", ""


def to_event(
    message: hl7.Message,
    zone: ZoneInfo,
    visit_sources: tuple[str, ...] = DEFAULT_VISIT_SOURCES,
    *,
    results: bool = False,
) -> AdtEvent:
    """Validate and map; raises HL7Error with the ACK code and field at fault. `results`:
    the site lists ORU codes that are discharge information (else ORU is unsupported)."""
    head = header(message)
    if not head.control_id:
        raise HL7Error(AckCode.REJECT, "MSH-10 message control id is required", "MSH", 10)
    accepted = (*MESSAGE_TYPES, "ORU") if results else MESSAGE_TYPES
    if head.message_type not in accepted:
        raise HL7Error(
            AckCode.REJECT,
            f"message type {head.message_type or '(empty)'} is not {', '.join(accepted)}",
            "MSH",
            9,
            UNSUPPORTED_MESSAGE_TYPE,
        )
    if not head.trigger_event:
        raise HL7Error(AckCode.REJECT, "MSH-9.2 trigger event is required", "MSH", 9)
    if head.version and head.version not in SUPPORTED_VERSIONS:
        raise HL7Error(
            AckCode.REJECT,
            f"HL7 version {head.version} is not supported",
            "MSH",
            12,
            UNSUPPORTED_VERSION,
        )
    if head.message_type in feed_mapping.SUPPORTED:
        feed_mapping.check(message, head.message_type, head.trigger_event)
    else:
        _check_structure(message, head.trigger_event)
    if not head.facility:
        raise HL7Error(AckCode.ERROR, "MSH-4 sending facility (or MSH-3) is required", "MSH", 4)
    visit_number, visit_source = _visit_number(message, visit_sources)
    if head.trigger_event in VISIT_REQUIRED and not visit_number:
        raise HL7Error(
            AckCode.ERROR,
            f"{head.trigger_event} needs a visit number ({', '.join(visit_sources)})",
            "PV1",
            19,
        )
    merges = _merges(message, head.trigger_event)

    occurred_at = _event_time(message, zone)
    discharged_at = er7.parse_timestamp(
        er7.value(message, "PV1", 45), zone, segment="PV1", field=45
    )
    if head.trigger_event == "A03" and discharged_at is None:
        discharged_at = occurred_at  # PV1-45 is often left empty: the event time is the discharge
    if head.trigger_event == "A03" and discharged_at is None:
        raise HL7Error(AckCode.ERROR, "A03 needs a discharge time (PV1-45 or MSH-7)", "PV1", 45)

    kind = head.message_type
    scheduled = (
        feed_mapping.appointment(message, head.trigger_event, zone) if kind == "SIU" else None
    )
    document = None
    if kind == "MDM":
        document = feed_mapping.document(message, zone, occurred_at)
    elif kind == "ORU":
        document = feed_mapping.result(message, zone, occurred_at)
    phones = _phones(message)
    diagnosis = _principal_diagnosis(message)
    return AdtEvent(
        header=head,
        event_type=head.trigger_event,
        facility=head.facility,
        visit_number=visit_number,
        visit_number_source=visit_source,
        patient_identifiers=_identifiers(message, "PID", 3),
        merged_identifiers=merges[0].merged if merges else (),
        merges=merges,
        location=er7.value(message, "PV1", 3),
        patient_class=er7.value(message, "PV1", 2),
        admission_type=er7.value(message, "PV1", 4),
        discharge_disposition=er7.value(message, "PV1", 36),
        discharged_to=er7.value(message, "PV1", 37),
        admitted_at=er7.parse_timestamp(
            er7.value(message, "PV1", 44), zone, segment="PV1", field=44
        ),
        discharged_at=discharged_at,
        death_indicator=_deceased(message),
        diagnosis_codes=_diagnoses(message),
        family_name=er7.value(message, "PID", 5, 1, 1),
        given_name=er7.value(message, "PID", 5, 1, 2),
        middle_name=er7.value(message, "PID", 5, 1, 3),
        birth_date=_birth_date(message, zone),
        sex=er7.value(message, "PID", 8),
        address=_address(message),
        cleared=_cleared(message),
        principal_diagnosis=er7.value(message, "DG1", 3, occurrence=diagnosis),
        principal_diagnosis_text=er7.value(message, "DG1", 3, 1, 2, occurrence=diagnosis),
        unit=er7.value(message, "PV1", 3),
        contact_numbers=phones,
        contact_numbers_cleared=not phones
        and any(er7.is_null(message, "PID", field) for field in (13, 14)),
        language=er7.value(message, "PID", 15, 1, 1) or er7.value(message, "PID", 15, 1, 2),
        next_of_kin=_next_of_kin(message),
        pcp_ids=_pcp_ids(message),
        pcp_name=_pcp_name(message),
        occurred_at=occurred_at,
        appointment=scheduled,
        document=document,
    )


def _event_time(message: hl7.Message, zone: ZoneInfo) -> datetime | None:
    for segment, field in (("EVN", 6), ("EVN", 2), ("MSH", 7)):
        found = er7.parse_timestamp(
            er7.value(message, segment, field), zone, segment=segment, field=field
        )
        if found is not None:
            return found
    return None


def _deceased(message: hl7.Message) -> bool:
    """PID-30 = Y, or any PID-29 death time as sent (a null or empty one is neither)."""
    return er7.value(message, "PID", 30).upper() == "Y" or bool(er7.value(message, "PID", 29))


def _diagnoses(message: hl7.Message) -> tuple[str, ...]:
    """DG1-3 code of every DG1 segment."""
    codes = (
        er7.value(message, "DG1", 3, occurrence=n)
        for n in range(1, er7.occurrences(message, "DG1") + 1)
    )
    return tuple(code for code in codes if code)


def _principal_diagnosis(message: hl7.Message) -> int:
    """The occurrence of the principal DG1: DG1-15 priority 1, else the first (0: none)."""
    count = er7.occurrences(message, "DG1")
    ranked = (n for n in range(1, count + 1) if er7.value(message, "DG1", 15, occurrence=n) == "1")
    return next(ranked, 1 if count else 0)


def _birth_date(message: hl7.Message, zone: ZoneInfo) -> date | None:
    """PID-7's date as written (a time or offset after it is ignored); None when it gives
    less than a day (a year alone is no birth date). Not a DTM at all: AE, field named."""
    raw = er7.value(message, "PID", 7)
    born = er7.parse_timestamp(raw, zone, segment="PID", field=7)
    return born.date() if born is not None and len(raw) >= 8 else None


# PID-5 components and the other PID fields whose explicit null "" clears the registry's value.
_NULLABLE_NAME = (("family_name", 1), ("given_name", 2), ("middle_name", 3))
_NULLABLE_FIELDS = (("birth_date", 7), ("sex", 8), ("address", 11), ("language", 15))


def _cleared(message: hl7.Message) -> tuple[str, ...]:
    cleared = [name for name, part in _NULLABLE_NAME if er7.is_null(message, "PID", 5, 1, part)]
    cleared += [name for name, field in _NULLABLE_FIELDS if er7.is_null(message, "PID", field)]
    if er7.is_null(message, "PD1", 4):
        cleared.append("pcp")
    return tuple(cleared)


def _address(message: hl7.Message) -> str:
    """PID-11's first repetition on one line: "street, other, city, state zip, country"."""

    def part(component: int, subcomponent: int = 1) -> str:
        return er7.value(message, "PID", 11, 1, component, subcomponent)

    street = " ".join(p for p in (part(1, 1), part(1, 2), part(1, 3)) if p)
    state_zip = " ".join(p for p in (part(4), part(5)) if p)
    return ", ".join(p for p in (street, part(2), part(3), state_zip, part(6)) if p)


def _phones(message: hl7.Message) -> tuple[str, ...]:
    numbers = []
    for field in (13, 14):
        for rep in range(1, er7.repetitions(message, "PID", field) + 1):
            formatted = er7.value(message, "PID", field, rep, 1)
            composed = er7.value(message, "PID", field, rep, 6) + er7.value(
                message, "PID", field, rep, 7
            )
            number = formatted or composed
            if number:
                numbers.append(number)
    return tuple(numbers)


def _next_of_kin(message: hl7.Message) -> tuple[NextOfKin, ...]:
    """NK1-2 (XPN family^given), NK1-3 (CE), NK1-5 first repetition (XTN number or 6+7)."""
    found = []
    for n in range(1, er7.occurrences(message, "NK1") + 1):
        family, given, relationship, number, area, local = (
            er7.value(message, "NK1", field, 1, component, occurrence=n)
            for field, component in ((2, 1), (2, 2), (3, 1), (5, 1), (5, 6), (5, 7))
        )
        name = " ".join(piece for piece in (given, family) if piece)
        phone = number or area + local
        if name or relationship or phone:
            found.append(NextOfKin(name=name, relationship=relationship, phone=phone))
    return tuple(found)


def _ids(message: hl7.Message, segment: str, field: int, occurrence: int) -> list[str]:
    """The first component of every repetition of an XCN field (PD1-4, ROL-4)."""
    count = er7.repetitions(message, segment, field, occurrence=occurrence)
    return [
        er7.value(message, segment, field, rep, occurrence=occurrence)
        for rep in range(1, count + 1)
    ]


def _pcp_name(message: hl7.Message) -> str:
    """The first PD1-4 (else ROL PP/PCP) provider's name as "Given Family"."""
    sources = [("PD1", n) for n in range(1, er7.occurrences(message, "PD1") + 1)]
    sources += [
        ("ROL", n)
        for n in range(1, er7.occurrences(message, "ROL") + 1)
        if er7.value(message, "ROL", 3, occurrence=n).upper() in PCP_ROLES
    ]
    for segment, n in sources:
        family = er7.value(message, segment, 4, 1, 2, occurrence=n)
        given = er7.value(message, segment, 4, 1, 3, occurrence=n)
        if family or given:
            return " ".join(p for p in (given, family) if p)
    return ""


def _pcp_ids(message: hl7.Message) -> tuple[str, ...]:
    """PD1-4 XCN ids, then ROL-4 ids of the ROL segments whose ROL-3 role is PP or PCP."""
    ids: list[str] = []
    for n in range(1, er7.occurrences(message, "PD1") + 1):
        ids.extend(_ids(message, "PD1", 4, n))
    for n in range(1, er7.occurrences(message, "ROL") + 1):
        if er7.value(message, "ROL", 3, occurrence=n).upper() in PCP_ROLES:
            ids.extend(_ids(message, "ROL", 4, n))
    return tuple(dict.fromkeys(i for i in ids if i))
