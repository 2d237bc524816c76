"""ER7 (pipe-delimited HL7 v2) decoding on top of python-hl7, tolerant of what feeds send."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import hl7
import structlog

from ingest.errors import DATA_TYPE_ERROR, HL7Error
from schemas.adt import AckCode, EncodingCharacters, MessageHeader
from schemas.site import CharacterSets

log = structlog.get_logger(__name__)

# The HL7 explicit null: "delete the value" (an empty field only means "not sent").
NULL = '""'
_SEGMENT_BREAK = re.compile(r"\r\n|\n|\r")
_DTM = re.compile(
    r"^(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?"
    r"(?P<second>\d{2})?(?:\.(?P<fraction>\d{1,4}))?(?P<offset>[+-]\d{4})?$"
)


BOM = b"\xef\xbb\xbf"
DEFAULT_CODEC = "utf-8"  # an empty or unknown MSH-18
# HL7 table 0211 (MSH-18) -> Python codec. Only character sets that keep ASCII as ASCII:
# the MSH is read as ASCII to find MSH-18 (UTF-16 and UTF-32 cannot be framed by MLLP's
# single bytes either, and ISO 2022 switching is not supported).
TABLE_0211 = {
    "ASCII": "ascii",
    **{f"8859/{part}": f"iso8859-{part}" for part in (1, 2, 3, 4, 5, 6, 7, 8, 9, 15)},
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "GB 18030-2000": "gb18030",
    "BIG-5": "big5",
}
# Tried in turn when the bytes are not valid in the declared character set: UTF-8 (valid
# UTF-8 is rarely anything else), then Windows-1252 (Latin-1 with the punctuation Windows
# puts at 0x80-0x9F, where Latin-1 has only C1 control characters, never meant in a
# message), then Latin-1, which reads any byte.
FALLBACKS = ("utf-8", "cp1252")
LAST_RESORT = "iso8859-1"
_C1 = re.compile("[\x80-\x9f]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_LINE_END = re.compile(rb"\r|\n")


@dataclass(frozen=True)
class Decoded:
    text: str
    codec: str  # what the bytes were read as; hex escapes are bytes in it too


def decode(raw: bytes, character_sets: CharacterSets | None = None) -> str:
    """Bytes to text in the MSH-18 character set (site overrides first), BOM stripped."""
    return read_text(raw, character_sets).text


def read_text(raw: bytes, character_sets: CharacterSets | None = None) -> Decoded:
    """decode(), and the codec it read the bytes with (a fallback is logged, no content).

    A UTF-8 BOM is taken as saying UTF-8, whatever MSH-18 says.
    """
    bom = raw.startswith(BOM)
    data = raw[len(BOM) :] if bom else raw
    codec = "utf-8" if bom else codec_for(*declared(data), character_sets=character_sets)
    text, used = decode_bytes(data, codec)
    if used != codec:
        log.warning("hl7.charset_fallback", declared=codec, used=used)
    return Decoded(text, used)


def decode_bytes(data: bytes, codec: str) -> tuple[str, str]:
    """The text and the codec it was read in: the first of codec, then FALLBACKS, that reads
    data strictly; else Latin-1."""
    for candidate in dict.fromkeys((codec, *FALLBACKS)):
        text = _strict(data, candidate)
        if text is not None:
            return text, candidate
    return data.decode(LAST_RESORT), LAST_RESORT


def _strict(data: bytes, codec: str) -> str | None:
    """The text, or None where a byte is not a character there (ISO 8859 has none at
    0x80-0x9F, where Python's codecs put C1 control characters)."""
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        return None
    if codec.startswith("iso8859-") and _C1.search(text):
        return None
    return text


def declared(data: bytes) -> tuple[str, str]:
    """MSH-18 (its first repetition: the default character set) and MSH-4, read from the
    bytes: the MSH is ASCII whatever the character set. Empty when there is no MSH."""
    first = _LINE_END.split(data.lstrip(b"\x0b\r\n "), 1)[0]
    if not first.startswith(b"MSH") or len(first) < 8:
        return "", ""
    fields = first.split(first[3:4])  # fields[n - 1] is MSH-n (fields[1] is MSH-2)
    msh2 = fields[1].ljust(2, b" ")
    component, repetition = msh2[0:1], msh2[1:2]

    def first_component(number: int, component_number: int = 1) -> str:
        if len(fields) < number:
            return ""
        parts = fields[number - 1].split(repetition)[0].split(component)
        found = parts[component_number - 1] if len(parts) >= component_number else b""
        return found.decode(LAST_RESORT).strip()

    return first_component(18), first_component(4) or first_component(4, 2)


def codec_for(
    character_set: str, facility: str = "", *, character_sets: CharacterSets | None = None
) -> str:
    """The Python codec for an MSH-18 value from that sending facility (MSH-4): the site's
    override, else table 0211, else UTF-8. The ACK goes back in the same codec."""
    override = character_sets.codec(character_set, facility) if character_sets else None
    return override or TABLE_0211.get(CharacterSets.label(character_set), DEFAULT_CODEC)


def reply_codec(header: MessageHeader | None, character_sets: CharacterSets) -> str:
    """The codec the replies to a message with this header are written in."""
    if header is None:
        return codec_for("", character_sets=character_sets)
    return codec_for(header.character_set, header.sending_facility, character_sets=character_sets)


def normalise(text: str) -> str:
    """CR-separated segments with no blank lines (feeds send LF, CRLF and trailing blanks)."""
    segments = [seg for seg in _SEGMENT_BREAK.split(text.strip("\x0b\x1c\r\n ")) if seg.strip()]
    return "\r".join(segments) + "\r"


# MSH-2 as written from source code that escaped its backslash ("^~\\\\&"): read as the
# standard "^~\\&" (the escape character cannot be doubled; nothing else is ambiguous).
DOUBLED_ESCAPE = "^~\\\\&"
STANDARD_ENCODING = "^~\\&"


def has_doubled_escape(raw: bytes) -> bool:
    """Whether MSH-2 was sent as `^~\\\\&` (read as `^~\\&`: worth a warning on the row)."""
    head = raw.removeprefix(b"\xef\xbb\xbf")
    doubled = DOUBLED_ESCAPE.encode()
    return head.startswith(b"MSH") and head[4 : 4 + len(doubled) + 1] == doubled + head[3:4]


def repair_encoding_characters(text: str) -> str:
    """The message with a doubled-backslash MSH-2 read as the standard one."""
    if text.startswith("MSH") and text[4 : 4 + len(DOUBLED_ESCAPE) + 1] == DOUBLED_ESCAPE + text[3]:
        return text[:4] + STANDARD_ENCODING + text[4 + len(DOUBLED_ESCAPE) :]
    return text


def parse(raw: bytes, character_sets: CharacterSets | None = None) -> hl7.Message:
    """Parse an ER7 message; anything without a usable MSH is an AR."""
    decoded = read_text(raw, character_sets)
    text = repair_encoding_characters(normalise(decoded.text))
    if not text.startswith("MSH") or len(text) < 8:
        raise HL7Error(AckCode.REJECT, "message does not start with an MSH segment", "MSH", 1)
    _check_delimiters(text)
    try:
        return hl7.parse(resolve_escapes(text, decoded.codec))
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


# Formatting escapes (chapter 2, "formatted text") in values read as one line: a line
# break or a skip is a space, layout and highlighting (\H\ \N\) are nothing.
_FORMATTING = {
    ".br": " ",
    ".sp": " ",
    ".ce": " ",
    ".sk": " ",
    ".in": "",
    ".ti": "",
    ".fi": "",
    ".nf": "",
}
_HIGHLIGHTING = ("H", "N")
_HEX = re.compile("X((?:[0-9A-Fa-f]{2})+)")
_HEADER_SEGMENTS = ("MSH", "BHS", "FHS")


def resolve_escapes(text: str, codec: str) -> str:
    """The message with every escape sequence but the delimiters' turned into text.

    python-hl7 is then left only \\F\\ \\S\\ \\T\\ \\R\\ \\E\\: it reads \\X..\\ as Latin-1
    code points, a line break as a CR, \\H\\ as "_", and logs a value it cannot read.
    """
    resolver = _Escapes(_encoding_of(text), codec)
    resolved = "\r".join(resolver.segment(segment) for segment in text.split("\r"))
    if resolver.dropped:
        log.warning("hl7.escapes_dropped", kinds=sorted(resolver.dropped))
    for used in sorted(resolver.hex_fallbacks):
        log.warning("hl7.charset_fallback", declared=codec, used=used, where="hex escape")
    return resolved


def _encoding_of(text: str) -> EncodingCharacters:
    """MSH-1 and MSH-2 of a message whose delimiters were checked (4 or 5 of them)."""
    separator = text[3]
    declared = text[4 : text.find(separator, 4)]
    return EncodingCharacters(
        field=separator,
        component=declared[0],
        repetition=declared[1],
        escape=declared[2],
        subcomponent=declared[3],
        truncation=declared[4:5],
    )


class _Escapes:
    """Escape sequences of one message, read in its codec."""

    def __init__(self, enc: EncodingCharacters, codec: str) -> None:
        self.enc = enc
        self.codec = codec
        self.dropped: set[str] = set()
        self.hex_fallbacks: set[str] = set()
        esc = re.escape(enc.escape)
        stops = re.escape(enc.field + enc.component + enc.repetition + enc.subcomponent)
        # a sequence ends within its value; an escape character with no end is a character
        self.pattern = re.compile(f"{esc}(?:([^{stops}{esc}\\r]*){esc})?")
        self.delimiters = {
            "F": enc.field,
            "S": enc.component,
            "T": enc.subcomponent,
            "R": enc.repetition,
            "E": enc.escape,
            "P": enc.truncation,  # v2.7: the truncation character as data
        }

    def segment(self, segment: str) -> str:
        """One segment resolved; MSH-1 and MSH-2 are the delimiters, not escapes."""
        start = 0
        if segment[:3] in _HEADER_SEGMENTS:
            end = segment.find(self.enc.field, 4)
            start = len(segment) if end < 0 else end
        return segment[:start] + self._body(segment[start:])

    def _body(self, body: str) -> str:
        out: list[str] = []
        pending = bytearray()  # adjacent hex sequences are one byte string (\XC3\\XA9\)
        position = 0
        for match in self.pattern.finditer(body):
            if match.start() > position:
                out += [self._hex(pending), body[position : match.start()]]
            position = match.end()
            content = match.group(1)
            hex_digits = _HEX.fullmatch(content) if content else None
            if hex_digits is not None:
                pending += bytes.fromhex(hex_digits.group(1))
            else:
                literal = self.enc.escape if content is None else self._text(content)
                out += [self._hex(pending), self._escaped(literal)]
        out += [self._hex(pending), body[position:]]
        return "".join(out)

    def _text(self, content: str) -> str:
        """What one sequence (not hex) stands for; "" for what cannot be shown as text."""
        if self.delimiters.get(content):
            return self.delimiters[content]
        if content in _HIGHLIGHTING:
            return ""
        if content[:3] in _FORMATTING:
            return _FORMATTING[content[:3]]
        self.dropped.add(_kind(content))
        return ""

    def _hex(self, pending: bytearray) -> str:
        """The pending hex bytes as text (escaped for python-hl7), and none left pending."""
        if not pending:
            return ""
        text, used = decode_bytes(bytes(pending), self.codec)
        if used != self.codec:
            self.hex_fallbacks.add(used)
        pending.clear()
        return self._escaped(_CONTROL.sub(" ", text))  # a hex CR is a line break: a space

    def _escaped(self, literal: str) -> str:
        """Text as python-hl7 reads it back: delimiters and the escape character escaped."""
        enc = self.enc
        names = {enc.escape: "E", enc.field: "F", enc.component: "S"}
        names |= {enc.subcomponent: "T", enc.repetition: "R"}
        return "".join(
            f"{enc.escape}{names[char]}{enc.escape}" if char in names else char for char in literal
        )


def _kind(content: str) -> str:
    """What a dropped sequence was, for the log (never its content)."""
    if not content:
        return "empty"
    if content[0] == "Z":
        return "local (Z)"
    if content[0] in "CM":
        return "character set switch"
    if content[0] == "X":
        return "malformed hex"
    return "unknown"


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
            AckCode.ERROR,
            "not an HL7 timestamp (YYYY[MM[DD[HH[MM[SS]]]]][+/-ZZZZ])",  # never the value: PHI
            segment,
            field,
            DATA_TYPE_ERROR,
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
            AckCode.ERROR, "impossible date or time", segment, field, DATA_TYPE_ERROR
        ) from exc
    offset = parts["offset"]
    if offset is None:
        return naive.replace(tzinfo=zone)
    sign = 1 if offset[0] == "+" else -1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
    return naive.replace(tzinfo=timezone(sign * delta))
