"""ER7 (pipe-delimited HL7 v2) decoding on top of python-hl7, tolerant of what feeds send."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import hl7

from ingest.errors import DATA_TYPE_ERROR, HL7Error
from schemas.adt import AckCode, EncodingCharacters
from schemas.site import CharacterSets

# The HL7 explicit null: "delete the value" (an empty field only means "not sent").
NULL = '""'
_SEGMENT_BREAK = re.compile(r"\r\n|\n|\r")
_DTM = re.compile(
    r"^(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?"
    r"(?P<second>\d{2})?(?:\.(?P<fraction>\d{1,4}))?(?P<offset>[+-]\d{4})?$"
)


def decode(raw: bytes) -> str:
    """Bytes to text: strip a UTF-8 BOM, accept Latin-1 where UTF-8 fails."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def codec_for(character_set: str) -> str:
    """The Python codec that writes text in the MSH-18 character set (the ACK goes back in
    the sender's own)."""
    return "utf-8"


def normalise(text: str) -> str:
    """CR-separated segments with no blank lines (feeds send LF, CRLF and trailing blanks)."""
    segments = [seg for seg in _SEGMENT_BREAK.split(text.strip("\x0b\x1c\r\n ")) if seg.strip()]
    return "\r".join(segments) + "\r"


# MSH-2 as written from source code that escaped its backslash ("^~\\\\&"): read as the
# standard "^~\\&" (the escape character cannot be doubled; nothing else is ambiguous).
DOUBLED_ESCAPE = "^~\\\\&"
STANDARD_ENCODING = "^~\\&"


def repair_encoding_characters(text: str) -> str:
    """The message with a doubled-backslash MSH-2 read as the standard one."""
    if text.startswith("MSH") and text[4 : 4 + len(DOUBLED_ESCAPE) + 1] == DOUBLED_ESCAPE + text[3]:
        return text[:4] + STANDARD_ENCODING + text[4 + len(DOUBLED_ESCAPE) :]
    return text


def parse(raw: bytes, character_sets: CharacterSets | None = None) -> hl7.Message:
    """Parse an ER7 message; anything without a usable MSH is an AR."""
    text = repair_encoding_characters(normalise(decode(raw)))
    if not text.startswith("MSH") or len(text) < 8:
        raise HL7Error(AckCode.REJECT, "message does not start with an MSH segment", "MSH", 1)
    _check_delimiters(text)
    try:
        return hl7.parse(text)
    except Exception as exc:  # python-hl7 raises several types for malformed input
        raise HL7Error(
            AckCode.REJECT, f"unparseable ER7: {type(exc).__name__}", "MSH", 1, DATA_TYPE_ERROR
        ) from exc


def is_delimiter(char: str) -> bool:
    return char.isprintable() and not char.isalnum() and not char.isspace()


def _check_delimiters(text: str) -> None:
    """MSH-1 and MSH-2 must be distinct printable punctuation, or nothing can be answered."""
    separator = text[3]
    if not is_delimiter(separator):
        raise HL7Error(AckCode.REJECT, "MSH-1 is not a valid field separator", "MSH", 1)
    end = text.find(separator, 4)
    declared = text[4:end] if end > 0 else ""
    valid = 4 <= len(declared) <= 5 and len(set(declared + separator)) == len(declared) + 1
    if not valid or not all(is_delimiter(c) for c in declared):
        raise HL7Error(AckCode.REJECT, "MSH-2 encoding characters are not valid", "MSH", 2)


def encoding_characters(message: hl7.Message) -> EncodingCharacters:
    msh = message.segment("MSH")
    field_sep = str(msh[1])
    declared = str(msh[2])
    chars = declared + "\\" * 4
    return EncodingCharacters(
        field=field_sep,
        component=chars[0],
        repetition=chars[1],
        escape=chars[2],
        subcomponent=chars[3] if len(declared) > 3 else "&",
        truncation=declared[4] if len(declared) > 4 else "",
    )


def raw_field(message: hl7.Message, segment: str, field: int) -> str:
    """A field exactly as sent: escaped, with every component and repetition."""
    seg = _segment(message, segment, 1)
    if seg is None or field >= len(seg):
        return ""
    return str(seg(field))


def has_segment(message: hl7.Message, name: str) -> bool:
    return any(str(segment[0]) == name for segment in message)


def _segment(message: hl7.Message, name: str, occurrence: int) -> hl7.Segment | None:
    """The occurrence-th (1-based) segment of that name; None when absent or a bare name."""
    if occurrence < 1:
        return None
    try:
        found: hl7.Segment = message.segments(name)(occurrence)
    except (IndexError, KeyError):  # fewer segments, or only a bare "NK1" with no fields
        return None
    return found


def _leaf(
    message: hl7.Message,
    segment: str,
    field: int,
    repetition: int,
    component: int,
    subcomponent: int,
    occurrence: int,
) -> str:
    """The unescaped, stripped leaf as sent: '' when absent or empty, NULL when the null.

    python-hl7 0.4.5 keeps `""` as the two-character string; a None leaf is taken as the
    null too, so that a parser that special-cases it still reads the same.
    """
    seg = _segment(message, segment, occurrence)
    if seg is None:
        return ""
    try:
        result: Any = seg.extract_field(1, field, repetition, component, subcomponent)
    except (IndexError, KeyError):
        return ""
    return NULL if result is None else str(result).strip()


def value(
    message: hl7.Message,
    segment: str,
    field: int,
    repetition: int = 1,
    component: int = 1,
    subcomponent: int = 1,
    *,
    occurrence: int = 1,
) -> str:
    """One unescaped leaf value; '' where absent, empty or the explicit null `""`.

    occurrence picks among repeated segments (the second NK1 is occurrence 2).
    """
    leaf = _leaf(message, segment, field, repetition, component, subcomponent, occurrence)
    return "" if leaf == NULL else leaf


def is_null(
    message: hl7.Message,
    segment: str,
    field: int,
    repetition: int | None = None,
    component: int | None = None,
    subcomponent: int | None = None,
    *,
    occurrence: int = 1,
) -> bool:
    """Whether the field was sent as exactly `""` (the explicit null: delete the value).

    With a repetition, component or subcomponent, asks about that one leaf instead (the
    missing parts default to 1); `""^PRN` is a null leaf, not a null field.
    """
    if repetition is not None or component is not None or subcomponent is not None:
        leaf = _leaf(
            message, segment, field, repetition or 1, component or 1, subcomponent or 1, occurrence
        )
        return leaf == NULL
    seg = _segment(message, segment, occurrence)
    if seg is None or field >= len(seg):
        return False
    node: Any = seg(field)
    return node is None or str(node).strip() == NULL


def repetitions(message: hl7.Message, segment: str, field: int, *, occurrence: int = 1) -> int:
    """How many repetitions the field has (an empty or null field counts one, read as '')."""
    seg = _segment(message, segment, occurrence)
    if seg is None or field >= len(seg):
        return 0
    return len(seg(field))


def occurrences(message: hl7.Message, name: str) -> int:
    """How many segments of that name carry fields (a bare "DG1" line counts none)."""
    if not has_segment(message, name):
        return 0
    try:
        return len(message.segments(name))
    except KeyError:
        return 0


def parse_timestamp(raw: str, zone: ZoneInfo, *, segment: str, field: int) -> datetime | None:
    """HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]); no offset means the facility's zone."""
    if not raw:
        return None
    match = _DTM.match(raw)
    if match is None:
        raise HL7Error(
            AckCode.ERROR, f"not an HL7 timestamp: {raw!r}", segment, field, DATA_TYPE_ERROR
        )
    parts = match.groupdict()
    fraction = (parts["fraction"] or "0").ljust(6, "0")
    try:
        naive = datetime(
            int(parts["year"]),
            int(parts["month"] or 1),
            int(parts["day"] or 1),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(fraction[:6]),
        )
    except ValueError as exc:
        raise HL7Error(
            AckCode.ERROR, f"impossible date {raw!r}", segment, field, DATA_TYPE_ERROR
        ) from exc
    offset = parts["offset"]
    if offset is None:
        return naive.replace(tzinfo=zone)
    sign = 1 if offset[0] == "+" else -1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    return naive.replace(tzinfo=timezone(sign * delta))
