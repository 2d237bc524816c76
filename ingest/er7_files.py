"""ER7 files as interface engines export them: one message or many, separated by MLLP
framing bytes (0x0b ... 0x1c 0x0d), blank lines, or nothing but the next `MSH` line; an
FHS/BHS batch is split as the listener splits it (ingest/batch.py). Segments may end in CR,
LF or CRLF; each message comes back with CR segment ends, the way a feed sends it."""

from __future__ import annotations

import re

from ingest import batch, er7

_BLOCK = re.compile(rb"[\x0b\x1c]")  # MLLP start and end block bytes
_SEGMENT_END = re.compile(rb"\r\n|\n|\r")
_BATCH_HEADERS = (b"FHS", b"BHS")


def messages_in(data: bytes) -> list[bytes]:
    """The messages of a file in file order (each from its MSH, CR-separated segments).

    Lines before the first MSH of a block are kept as a message of their own: the intake
    refuses it (AR) like any other text that is not a message. Raises HL7Error when a batch
    envelope is out of order."""
    found: list[bytes] = []
    for block in _BLOCK.split(data.removeprefix(er7.BOM)):
        lines = [line for line in _SEGMENT_END.split(block) if line.strip()]
        if not lines:
            continue
        if lines[0].lstrip()[:3] in _BATCH_HEADERS:
            read = batch.read(_joined(lines))
            if read is not None:
                found.extend(_joined(_SEGMENT_END.split(m)) for m in read.messages)
                continue
        found.extend(_joined(message) for message in _by_header(lines))
    return found


def _by_header(lines: list[bytes]) -> list[list[bytes]]:
    """Each line starting with MSH starts a new message."""
    messages: list[list[bytes]] = []
    for line in lines:
        if line.lstrip().startswith(b"MSH") or not messages:
            messages.append([])
        messages[-1].append(line)
    return messages


def _joined(lines: list[bytes]) -> bytes:
    kept = [line for line in lines if line.strip()]
    if kept:
        kept[0] = kept[0].lstrip()
    return b"\r".join(kept) + b"\r" if kept else b""
