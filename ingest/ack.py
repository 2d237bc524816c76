"""HL7 ACK messages: MSH fields swapped, MSA-2 echoing MSH-10, an ERR segment on errors,
written with the sender's encoding characters and version."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from ingest.errors import (
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_PROCESSING_ID,
    UNSUPPORTED_VERSION,
    HL7Error,
)
from schemas.adt import AckCode, EncodingCharacters, MessageHeader

DEFAULT_VERSION = "2.5.1"


def escape(text: str, enc: EncodingCharacters) -> str:
    """Escape the sender's delimiters in free text (HL7 escape sequences \\F\\ \\S\\ ...)."""
    esc = enc.escape
    replacements = (
        (esc, f"{esc}E{esc}"),
        (enc.field, f"{esc}F{esc}"),
        (enc.component, f"{esc}S{esc}"),
        (enc.subcomponent, f"{esc}T{esc}"),
        (enc.repetition, f"{esc}R{esc}"),
        *(((enc.truncation, f"{esc}P{esc}"),) if enc.truncation else ()),
    )
    out = []
    for char in text.replace("\r", " ").replace("\n", " "):
        for needle, replacement in replacements:
            if char == needle:
                out.append(replacement)
                break
        else:
            out.append(char)
    return "".join(out)


def _err_segment(error: HL7Error, enc: EncodingCharacters, version: str) -> str:
    f, c, s = enc.field, enc.component, enc.subcomponent
    code, name = error.condition
    text = escape(error.text, enc)
    location = f"{error.segment}{c}{error.sequence}{c}{error.field}" if error.segment else ""
    if version[:3] in ("2.2", "2.3", "2.4"):
        # ERR-1 (CM/ELD): segment^sequence^field^code&text
        return f"ERR{f}{location}{c}{code}{s}{name}"
    # v2.5+: ERR-2 location, ERR-3 HL7 error code (table 0357), ERR-4 severity, ERR-8 user text
    return f"ERR{f}{f}{location}{f}{code}{c}{name}{c}HL70357{f}E{f}{f}{f}{f}{text}"


def build_ack(
    header: MessageHeader | None,
    code: AckCode,
    *,
    text: str = "",
    error: HL7Error | None = None,
    now: datetime,
) -> str:
    """An ACK for `header` (or for an unreadable message when header is None)."""
    head = header or MessageHeader()
    enc = head.encoding
    f = enc.field
    version = head.version or DEFAULT_VERSION
    trigger = head.trigger_event
    msg_type = f"ACK{enc.component}{trigger}" if trigger else "ACK"
    if trigger and version not in ("2.1", "2.2", "2.3"):
        msg_type += f"{enc.component}ACK"  # MSG.3, the message structure, came in v2.3.1
    fields = [
        "MSH",
        enc.msh2,
        head.receiving_application_hd or escape(head.receiving_application, enc) or "CAREBRIDGE",
        head.receiving_facility_hd or escape(head.receiving_facility, enc),
        head.sending_application_hd or escape(head.sending_application, enc),
        head.sending_facility_hd or escape(head.sending_facility, enc),
        now.strftime("%Y%m%d%H%M%S%z"),
        "",
        msg_type,
        uuid.uuid4().hex[:20],
        escape(head.processing_id, enc) or "P",
        version,
    ]
    if head.character_set:  # MSH-13..17 empty; MSH-18: the ACK is in the sender's charset
        fields += ["", "", "", "", "", escape(head.character_set, enc)]
    segments = [f.join(fields)]
    msa = [
        "MSA",
        code.value,
        escape(head.control_id, enc),
        escape(text or (error.text if error else ""), enc),
    ]
    segments.append(f.join(msa).rstrip(f))
    if error is not None:
        segments.append(_err_segment(error, enc, version))
    return "\r".join(segments) + "\r"


# The commit ACK says whether the message is in safe storage, not what processing made of it:
# CR when MSH-9, MSH-11 or MSH-12 is unacceptable (HL7 v2.5 2.9.3.2), CE when it could not be
# stored, CA otherwise (its processing may still fail: the application ACK says so).
COMMIT_REJECTIONS = frozenset(
    {UNSUPPORTED_MESSAGE_TYPE[0], UNSUPPORTED_PROCESSING_ID[0], UNSUPPORTED_VERSION[0]}
)


def commit_code(committed: bool, error: HL7Error | None) -> AckCode:
    if not committed:
        return AckCode.COMMIT_ERROR
    if error is not None and error.condition[0] in COMMIT_REJECTIONS:
        return AckCode.COMMIT_REJECT
    return AckCode.COMMIT_ACCEPT


def is_enhanced_mode(header: MessageHeader | None) -> bool:
    """HL7: original mode when MSH-15 and MSH-16 are both empty, enhanced otherwise."""
    return header is not None and bool(header.accept_ack_type or header.application_ack_type)


def _wanted(condition: str, success: bool) -> bool:
    """Table 0155: AL always (also when empty), NE never, ER on error, SU on success."""
    condition = condition.upper() or "AL"
    return (
        condition == "AL" or (condition == "ER" and not success) or (condition == "SU" and success)
    )


@dataclass(frozen=True)
class Acknowledgments:
    """`connection`: the replies on the sender's connection, in order; `application`: an
    enhanced-mode application ACK that goes to the sender's own inbound port instead."""

    connection: tuple[str, ...]
    application: str | None = None


def acknowledgments(
    header: MessageHeader | None,
    application_ack: str,
    code: AckCode,
    *,
    error: HL7Error | None = None,
    committed: bool,
    application_ack_on_connection: bool,
    now: datetime,
) -> Acknowledgments:
    """Original mode: the application ACK on the connection. Enhanced mode: the commit ACK
    (per MSH-15) is the reply on the connection; the application ACK (per MSH-16, and only for
    a stored message) is a message of its own, on the connection only where the site says the
    sender expects it there."""
    if not is_enhanced_mode(header):
        return Acknowledgments((application_ack,))
    assert header is not None
    commit = commit_code(committed, error)
    replies = []
    if _wanted(header.accept_ack_type, commit == AckCode.COMMIT_ACCEPT):
        refusal = error if commit != AckCode.COMMIT_ACCEPT else None
        replies.append(build_ack(header, commit, error=refusal, now=now))
    application = None
    if committed and _wanted(header.application_ack_type, code == AckCode.ACCEPT):
        application = application_ack
    if application is not None and application_ack_on_connection:
        return Acknowledgments((*replies, application))
    return Acknowledgments(tuple(replies), application)
