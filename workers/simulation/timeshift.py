"""Moving a recorded ER7 message in time: every event time the engine reads is shifted by
one delta, written back with the precision and UTC offset it had (no offset stays none,
read in the site's zone); `""` and empty fields stay as they are, and so do birth dates and
every other field that is not an event time. The rest of the message is left byte for byte.

Times to the hour or finer move by the absolute delta (relative timing is kept across a
DST change); coarser ones (a date) move by the whole days of the shift, so a date does not
become the day before when the shift crosses a DST change."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from zoneinfo import ZoneInfo

from ingest import er7
from ingest.errors import HL7Error

# (segment, field, component): the event times ingest/ reads (mapping.py, feed_mapping.py),
# and PID-29, the death time. Subcomponent 1 of the component (a TS inside a TQ) is the DTM.
EVENT_TIMES: tuple[tuple[str, int, int], ...] = (
    ("MSH", 7, 1),
    ("EVN", 2, 1),
    ("EVN", 3, 1),
    ("EVN", 6, 1),
    ("PID", 29, 1),
    ("PV1", 44, 1),
    ("PV1", 45, 1),
    ("SCH", 11, 4),
    ("TQ1", 7, 1),
    ("AIS", 4, 1),
    ("TXA", 4, 1),
    ("TXA", 6, 1),
    ("OBR", 7, 1),
    ("OBX", 14, 1),
)
_TARGETS = {
    name: [(field, component) for segment, field, component in EVENT_TIMES if segment == name]
    for name, _, _ in EVENT_TIMES
}
_DTM = re.compile(
    r"^(?P<digits>\d{4}(?:\d{2}){0,5})(?P<fraction>\.\d{1,4})?(?P<offset>[+-]\d{4})?$"
)
_HOUR_DIGITS = 10


@dataclass(frozen=True)
class Shift:
    delta: timedelta  # absolute
    days: int  # the whole days between the first message's local date and the start day
    zone: ZoneInfo  # where a time without an offset is read and written


def shift_value(raw: str, shift: Shift) -> str:
    """One DTM moved; anything else (empty, `""`, not a timestamp) as it was."""
    match = _DTM.match(raw)
    if match is None:
        return raw
    try:
        at = er7.parse_timestamp(raw, shift.zone, segment="", field=0)
    except HL7Error:  # an impossible date: the intake answers it with AE
        return raw
    assert at is not None
    digits, fraction, offset = match.group("digits", "fraction", "offset")
    if len(digits) < _HOUR_DIGITS:
        moved = at + timedelta(days=shift.days)  # wall-clock: a date stays a date
    else:
        moved = at.astimezone(UTC) + shift.delta
    if offset is not None:
        sign = 1 if offset[0] == "+" else -1
        moved = moved.astimezone(
            timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:])))
        )
    else:
        moved = moved.astimezone(shift.zone)
    text = moved.strftime("%Y%m%d%H%M%S")[: len(digits)]
    if fraction is not None:
        text += "." + f"{moved.microsecond:06d}"[: len(fraction) - 1]
    return text + (offset or "")


def shift_message(raw: bytes, shift: Shift) -> bytes:
    """The message with its event times moved (CR-separated segments, as messages_in gives
    them). Read as Latin-1, which maps every byte to one character and back: the delimiters
    are ASCII, and no other byte changes."""
    text = raw.decode("latin-1")
    if not text.startswith("MSH") or len(text) < 8:
        return raw
    separator, encoding = text[3], text[4:8]
    component, repetition = encoding[0], encoding[1]
    subcomponent = encoding[3] if len(encoding) > 3 else "&"
    segments = text.split("\r")
    for index, segment in enumerate(segments):
        targets = _TARGETS.get(segment[:3])
        if not targets:
            continue
        fields = segment.split(separator)
        first = 1 if segment[:3] == "MSH" else 0  # MSH-1 is the separator itself
        for number, part in targets:
            at = number - first
            if at < len(fields):
                fields[at] = repetition.join(
                    _shift_component(value, part, component, subcomponent, shift)
                    for value in fields[at].split(repetition)
                )
        segments[index] = separator.join(fields)
    return "\r".join(segments).encode("latin-1")


def _shift_component(
    value: str, number: int, component: str, subcomponent: str, shift: Shift
) -> str:
    components = value.split(component)
    if number > len(components):
        return value
    parts = components[number - 1].split(subcomponent)
    parts[0] = shift_value(parts[0], shift)
    components[number - 1] = subcomponent.join(parts)
    return component.join(components)
