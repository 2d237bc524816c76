"""The HL7 fields of the feed's other messages: SIU scheduling (chapter 10: SCH, TQ1, RGS,
AIS, AIL, AIP) and MDM documents (chapter 9: TXA). ingest/mapping.py maps the patient (PID)
and header the same way as for ADT, and calls these for the rest."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import hl7

from ingest import er7
from ingest.errors import SEGMENT_SEQUENCE_ERROR, UNSUPPORTED_MESSAGE_TYPE, HL7Error
from schemas.adt import AckCode
from schemas.feed import (
    BOOKINGS,
    DOCUMENT_EVENTS,
    RESULT_EVENTS,
    SCHEDULING_EVENTS,
    Appointment,
    DocumentNotice,
)

SUPPORTED = {"SIU": SCHEDULING_EVENTS, "MDM": DOCUMENT_EVENTS, "ORU": RESULT_EVENTS}
REQUIRED_SEGMENTS = {
    "SIU": ("SCH", "PID"),
    "MDM": ("EVN", "PID", "PV1", "TXA"),
    "ORU": ("PID", "PV1", "OBR"),
}


def check(message: hl7.Message, message_type: str, trigger: str) -> None:
    """The triggers carebridge acts on and the segments their structures require; another
    SIU or MDM trigger is refused like an unsupported message type (AR)."""
    triggers = SUPPORTED[message_type]
    if trigger not in triggers:
        raise HL7Error(
            AckCode.REJECT,
            f"{message_type}^{trigger} is not supported (only {', '.join(sorted(triggers))})",
            "MSH",
            9,
            UNSUPPORTED_MESSAGE_TYPE,
        )
    for name in REQUIRED_SEGMENTS[message_type]:
        if not er7.has_segment(message, name):
            raise HL7Error(
                AckCode.ERROR,
                f"{name} segment is required in an {message_type}^{trigger}",
                name,
                0,
                SEGMENT_SEQUENCE_ERROR,
            )
    if not er7.value(message, "PID", 3):
        raise HL7Error(AckCode.ERROR, "PID-3 patient identifier list is required", "PID", 3)


def _first_time(
    message: hl7.Message, zone: ZoneInfo, sources: tuple[tuple[str, int, int], ...]
) -> datetime | None:
    for segment, field, component in sources:
        raw = er7.value(message, segment, field, 1, component)
        if raw:
            return er7.parse_timestamp(raw, zone, segment=segment, field=field)
    return None


def appointment(message: hl7.Message, trigger: str, zone: ZoneInfo) -> Appointment:
    """SCH ids, the start (AIS-4; TQ1-7 from v2.5; SCH-11.4 before), AIP-3 and AIL-3.1. A
    booking (S12, S13, S14) without a start time is refused with the fields named."""
    at = _first_time(message, zone, (("AIS", 4, 1), ("TQ1", 7, 1), ("SCH", 11, 4)))
    if trigger in BOOKINGS and at is None:
        raise HL7Error(
            AckCode.ERROR,
            f"SIU^{trigger} needs the appointment's start time (AIS-4, TQ1-7 or SCH-11.4)",
            "AIS",
            4,
        )
    family = er7.value(message, "AIP", 3, 1, 2)
    given = er7.value(message, "AIP", 3, 1, 3)
    provider = " ".join(p for p in (given, family) if p) or er7.value(message, "AIP", 3)
    return Appointment(
        id=er7.value(message, "SCH", 2) or er7.value(message, "SCH", 1),
        at=at,
        provider=provider[:120],
        location=er7.value(message, "AIL", 3)[:80],
    )


def result(message: hl7.Message, zone: ZoneInfo, event_at: datetime | None) -> DocumentNotice:
    """ORU: OBR-4.1 the code, OBR-7 (else OBX-14, else the event time), OBR-3.1 filler id."""
    at = _first_time(message, zone, (("OBR", 7, 1), ("OBX", 14, 1))) or event_at
    return DocumentNotice(
        type=er7.value(message, "OBR", 4),
        at=at,
        number=er7.value(message, "OBR", 3)[:80],
    )


def document(message: hl7.Message, zone: ZoneInfo, event_at: datetime | None) -> DocumentNotice:
    """TXA-2, TXA-4 (else TXA-6, else the event time), TXA-12.1."""
    at = _first_time(message, zone, (("TXA", 4, 1), ("TXA", 6, 1))) or event_at
    return DocumentNotice(
        type=er7.value(message, "TXA", 2),
        at=at,
        number=er7.value(message, "TXA", 12)[:80],
    )
