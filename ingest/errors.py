"""Why a message was refused, in HL7 terms (MSA-1 code, ERR location, table 0357 code)."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.adt import AckCode

# HL7 table 0357 message error condition codes used by carebridge.
SEGMENT_SEQUENCE_ERROR = ("100", "Segment sequence error")
REQUIRED_FIELD_MISSING = ("101", "Required field missing")
DATA_TYPE_ERROR = ("102", "Data type error")
UNSUPPORTED_MESSAGE_TYPE = ("200", "Unsupported message type")
UNSUPPORTED_PROCESSING_ID = ("202", "Unsupported processing id")
UNSUPPORTED_VERSION = ("203", "Unsupported version id")
UNKNOWN_KEY = ("204", "Unknown key identifier")
DUPLICATE_KEY = ("205", "Duplicate key identifier")
INTERNAL_ERROR = ("207", "Application internal error")


@dataclass(eq=False)  # not frozen: Python sets __traceback__ on exceptions
class HL7Error(Exception):
    """A message carebridge cannot act on; the sender gets `ack_code` with an ERR segment."""

    ack_code: AckCode
    text: str
    segment: str = ""
    field: int = 0
    condition: tuple[str, str] = REQUIRED_FIELD_MISSING
    sequence: int = 1  # which occurrence of the segment (the second MSH in a frame is 2)

    def __str__(self) -> str:
        where = f"{self.segment}-{self.field}: " if self.segment and self.field else ""
        return f"{where}{self.text}"
