"""What one frame (or POST /adt body) holds, and how it is answered.

One frame carries one message, or one HL7 batch: `[FHS] [BHS] {MSH ...} [BTS] [FTS]`
(HL7 v2 chapter 2, batch protocol). A batch is split into its messages; each goes through
the intake on its own (stored, routed and acknowledged as if sent alone), and the frame is
answered with one acknowledgment batch: `[FHS] BHS {ACK} BTS [FTS]`, sender and receiver
swapped, BHS-12/FHS-12 naming the batch/file it answers. Two messages without a batch
envelope are refused together (AR): the second MSH would otherwise hide inside the first
message and never be acknowledged. Segments may end in CR, LF or CRLF.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import structlog

from ingest import er7
from ingest.errors import SEGMENT_SEQUENCE_ERROR, HL7Error
from ingest.intake import AdtIntake, IntakeResult
from schemas.adt import AckCode

log = structlog.get_logger(__name__)

_LINE = re.compile(rb"[^\r\n]+")
_BOM = b"\xef\xbb\xbf"
_HEADERS = ("FHS", "BHS")
_TRAILERS = ("BTS", "FTS")
_ENVELOPE = (*_HEADERS, *_TRAILERS)
ACK_APPLICATION = "CAREBRIDGE"  # our name when the sender left the receiving application empty


@dataclass(frozen=True)
class _Segment:
    name: str  # the segment id, '' when the line does not start with one
    start: int  # offset of its first byte in the frame
    line: bytes


@dataclass(frozen=True)
class Header:
    """An FHS or BHS as sent: fields still escaped (they go back in the same encoding)."""

    name: str
    fields: tuple[str, ...]  # fields[n] is field n: [1] the separator, [2] encoding characters

    def field(self, number: int) -> str:
        return self.fields[number] if number < len(self.fields) else ""


@dataclass(frozen=True)
class Batch:
    """A batch split into its messages (each the bytes from its MSH, as sent)."""

    file_header: Header | None
    batch_header: Header | None
    messages: tuple[bytes, ...]

    @property
    def separator(self) -> str:
        return self._first.field(1)

    @property
    def encoding(self) -> str:
        return self._first.field(2)

    @property
    def _first(self) -> Header:
        first = self.file_header or self.batch_header
        assert first is not None  # a batch has at least one header
        return first


@dataclass(frozen=True)
class Answer:
    """What goes back for one frame: `replies` in order (each its own MLLP frame; HTTP
    returns the last), and the intake result of each message handled."""

    replies: tuple[bytes, ...]
    results: tuple[IntakeResult, ...]


def _segment_name(line: bytes) -> str:
    """The segment id: three characters followed by a delimiter (or nothing)."""
    if len(line) < 3 or (len(line) > 3 and chr(line[3]).isalnum()):
        return ""
    return line[:3].decode("latin-1")


def _segments(payload: bytes) -> list[_Segment]:
    """The frame's non-blank lines, wherever CR, LF or CRLF ends them."""
    begin = len(_BOM) if payload.startswith(_BOM) else 0
    found: list[_Segment] = []
    for match in _LINE.finditer(payload, begin):
        line = match.group()
        if not line.strip():
            continue
        if not found:  # the text may start with spaces, as er7.normalise allows
            line = line.lstrip(b" ")
        found.append(_Segment(_segment_name(line), match.end() - len(line), line))
    return found


def read(payload: bytes) -> Batch | None:
    """The frame's batch, or None when it holds one message (handed to the intake as is).

    Raises HL7Error (AR) when the frame holds two messages without a batch envelope, or a
    batch whose header cannot be read or whose segments are out of order."""
    segments = _segments(payload)
    if not segments or segments[0].name not in _HEADERS:
        _check_one_message(segments)
        return None
    return _split(payload, segments)


def _check_one_message(segments: list[_Segment]) -> None:
    if sum(segment.name == "MSH" for segment in segments) > 1:
        raise HL7Error(
            AckCode.REJECT,
            "one message per frame: a second MSH segment starts another message; send each "
            "message in its own frame or wrap them in a BHS/BTS batch",
            "MSH",
            0,
            SEGMENT_SEQUENCE_ERROR,
            sequence=2,
        )


def _split(payload: bytes, segments: list[_Segment]) -> Batch:
    """[FHS] [BHS] {MSH ...} [BTS] [FTS]: anything else out of place refuses the frame."""
    seen: Counter[str] = Counter()
    headers: dict[str, Header] = {}
    starts: list[int] = []
    end = len(payload)
    phase = 0  # 0: headers, 1: messages, 2: trailers
    for segment in segments:
        seen[segment.name] += 1
        if phase == 0 and _header_in_order(segment.name, headers):
            headers[segment.name] = _header(segment, headers)
            continue
        if phase <= 1 and segment.name == "MSH":
            phase = 1
            starts.append(segment.start)
            continue
        if phase == 1 and segment.name not in _ENVELOPE:
            continue  # a segment of the current message
        if segment.name in _TRAILERS and _trailer_in_order(segment.name, seen):
            end = min(end, segment.start)
            phase = 2
            continue
        raise _out_of_place(segment.name, seen[segment.name])
    bounds = [*starts, end]
    messages = tuple(payload[a:b] for a, b in itertools.pairwise(bounds))
    return Batch(headers.get("FHS"), headers.get("BHS"), messages)


def _header_in_order(name: str, headers: dict[str, Header]) -> bool:
    """FHS first, BHS once (alone or after the FHS)."""
    return name not in headers and (name == "BHS" or (name == "FHS" and not headers))


def _trailer_in_order(name: str, seen: Counter[str]) -> bool:
    """BTS at most once and before FTS; FTS at most once."""
    return seen[name] == 1 and not (name == "BTS" and seen["FTS"])


def _out_of_place(name: str, sequence: int) -> HL7Error:
    return HL7Error(
        AckCode.REJECT,
        f"segment {name or '(unnamed)'} is out of place in a batch: one frame holds one "
        "batch, [FHS] [BHS] {MSH ...} [BTS] [FTS]",
        name,
        0,
        SEGMENT_SEQUENCE_ERROR,
        sequence=sequence,
    )


def _header(segment: _Segment, earlier: dict[str, Header]) -> Header:
    """An FHS/BHS whose separator and encoding characters can be read (and match the
    header before it): else the batch cannot be answered in the sender's encoding."""
    text = er7.decode(segment.line)
    name = segment.name
    separator = text[3] if len(text) > 3 else ""
    if not separator or not er7.is_delimiter(separator):
        raise HL7Error(AckCode.REJECT, f"{name}-1 is not a valid field separator", name, 1)
    parts = text.split(separator)
    encoding = parts[1] if len(parts) > 1 else ""
    distinct = len(set(encoding + separator)) == len(encoding) + 1
    if not (4 <= len(encoding) <= 5 and distinct and all(map(er7.is_delimiter, encoding))):
        raise HL7Error(AckCode.REJECT, f"{name}-2 encoding characters are not valid", name, 2)
    header = Header(name, (name, separator, *parts[1:]))
    for other in earlier.values():
        if other.fields[1:3] != header.fields[1:3]:
            raise HL7Error(
                AckCode.REJECT, f"{name} does not use the delimiters of {other.name}", name, 2
            )
    return header


def batch_ack(batch: Batch, acks: list[str], *, now: datetime) -> str:
    """The acknowledgment batch: [FHS] BHS, each message's application ACK, BTS [FTS]."""
    separator = batch.separator
    segments = []
    if batch.file_header is not None:
        segments.append(_reply_header("FHS", batch.file_header, batch, now))
    segments.append(_reply_header("BHS", batch.batch_header or batch.file_header, batch, now))
    segments += [segment for ack in acks for segment in ack.split("\r") if segment]
    segments.append(f"BTS{separator}{len(acks)}")
    if batch.file_header is not None:
        segments.append(f"FTS{separator}1")
    return "\r".join(segments) + "\r"


def _reply_header(name: str, to: Header | None, batch: Batch, now: datetime) -> str:
    """Sending and receiving swapped, a control id of its own, field 12 = the one answered
    (empty when there is no such header, as with a BHS answering a file without one)."""
    assert to is not None
    answered = to.field(11) if to.name == name else ""
    fields = [
        name,
        batch.encoding,
        to.field(5) or ACK_APPLICATION,
        to.field(6),
        to.field(3),
        to.field(4),
        now.strftime("%Y%m%d%H%M%S%z"),
        "",
        "",
        "",
        uuid.uuid4().hex[:20],
        answered,
    ]
    return batch.separator.join(fields)


async def answer(
    intake: AdtIntake, payload: bytes, sender_facilities: frozenset[str] | None = None
) -> Answer:
    """Hand the frame's message(s) to the intake and say what goes back (`sender_facilities`:
    what the connection's certificate may send for, None for no restriction)."""
    try:
        batch = read(payload)
    except HL7Error as error:
        refused = await intake.refuse(payload, error)
        return Answer(tuple(refused.wire()), (refused,))
    if batch is None:
        result = await intake.handle(payload, sender_facilities=sender_facilities)
        return Answer(tuple(result.wire()), (result,))
    log.info("adt.batch", messages=len(batch.messages))
    results = tuple(
        [
            await intake.handle(message, sender_facilities=sender_facilities)
            for message in batch.messages
        ]
    )
    charset = results[0].charset if results else er7.codec_for("")
    text = batch_ack(batch, [result.ack for result in results], now=intake.now())
    return Answer((text.encode(charset, errors="replace"),), results)
