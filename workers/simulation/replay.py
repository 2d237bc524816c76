"""A recorded feed replayed: a file or a folder of ER7 files (a day or a month exported from
an interface engine), each message at its MSH-7 (else EVN-2, else just after the message
before it in its file), all shifted by one delta so that the first lands on the simulated
start day at the same local time of day. What the engine makes of each message (accepted,
refused, a readmission, a cancel) is counted from its answers, never from the file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import hl7

from ingest import er7
from ingest.er7_files import messages_in
from ingest.errors import HL7Error
from workers.runtime.embedded import StackError
from workers.simulation.feed import FeedMessage
from workers.simulation.timeshift import Shift, shift_message


class ReplayError(StackError):
    """A feed that cannot be replayed; names the file and message, never their content."""


@dataclass(frozen=True)
class Recorded:
    source: str  # the file, relative to the folder replayed
    number: int  # the message's place in its file, from 1
    raw: bytes
    at: datetime


def replay(path: Path, start: datetime, zone: ZoneInfo) -> list[FeedMessage]:
    """The feed at `path` shifted to `start` (a local midnight), sorted by time."""
    return shifted(read(path, zone), start, zone)


def read(path: Path, zone: ZoneInfo) -> list[Recorded]:
    """Every message of the file, or of the folder's files in name order, with its time."""
    found: list[Recorded] = []
    for file in _files(path):
        source = file.name if file == path else str(file.relative_to(path))
        try:
            messages = messages_in(file.read_bytes())
        except HL7Error as exc:
            raise ReplayError(f"{source} cannot be read as ER7: {exc}") from None
        before: datetime | None = None
        for number, raw in enumerate(messages, 1):
            at = _time(raw, zone) or before
            if at is None:
                raise ReplayError(
                    f"{source}: message {number} has no usable time (MSH-7 or EVN-2) and no "
                    "message before it in the file to follow"
                )
            found.append(Recorded(source, number, raw, at))
            before = at
    if not found:
        raise ReplayError(f"{path} holds no HL7 message")
    return found


def shifted(recorded: list[Recorded], start: datetime, zone: ZoneInfo) -> list[FeedMessage]:
    """Each message moved by the delta that puts the first on `start`'s day at the same
    local wall time; the order of equal times is the order read."""
    first = min(recorded, key=lambda r: r.at).at.astimezone(zone)
    day = start.astimezone(zone).date()
    target = datetime.combine(day, first.time().replace(tzinfo=None), tzinfo=zone)
    shift = Shift(
        delta=target.astimezone(UTC) - first.astimezone(UTC),
        days=(day - first.date()).days,
        zone=zone,
    )
    feed = [_message(r, shift) for r in recorded]
    return sorted(feed, key=lambda m: m.at)


def _message(recorded: Recorded, shift: Shift) -> FeedMessage:
    raw = shift_message(recorded.raw, shift)
    trigger = visit = disposition = ""
    try:
        message = er7.parse(raw)
    except HL7Error:
        pass  # sent as it is: the intake refuses it (AR), and the report counts that
    else:
        trigger = er7.value(message, "MSH", 9, 1, 2)
        visit = er7.value(message, "PV1", 19)
        disposition = er7.value(message, "PV1", 36)
    return FeedMessage(
        at=recorded.at.astimezone(UTC) + shift.delta,
        raw=raw,
        trigger=trigger,
        visit=visit,
        disposition=disposition,
        high_risk=False,
        replayed=True,
    )


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ReplayError(f"there is no file or folder {path} to replay")
    return sorted(
        file
        for file in path.rglob("*")
        if file.is_file() and not any(p.startswith(".") for p in file.relative_to(path).parts)
    )


def _time(raw: bytes, zone: ZoneInfo) -> datetime | None:
    """MSH-7, else EVN-2, read as the intake reads them; None when neither is a usable
    timestamp (the message then follows the one before it in its file)."""
    try:
        message: hl7.Message = er7.parse(raw)
    except HL7Error:
        return None  # not a message the intake can read: it refuses it (AR), counted
    for segment, field in (("MSH", 7), ("EVN", 2)):
        try:
            at = er7.parse_timestamp(
                er7.value(message, segment, field), zone, segment=segment, field=field
            )
        except HL7Error:
            continue  # not a timestamp: the intake answers AE, the next source places it
        if at is not None:
            return at
    return None
