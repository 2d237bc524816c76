"""HL7 ACK messages: MSH fields swapped, MSA-2 echoing MSH-10, an ERR segment on errors,
written with the sender's encoding characters and version."""

from __future__ import annotations

import uuid
from datetime import datetime

from ingest.errors import HL7Error
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


_COMMIT_CODES = {
    AckCode.ACCEPT: AckCode.COMMIT_ACCEPT,
    AckCode.ERROR: AckCode.COMMIT_ERROR,
    AckCode.REJECT: AckCode.COMMIT_REJECT,
}


def is_enhanced_mode(header: MessageHeader | None) -> bool:
    """HL7: original mode when MSH-15 and MSH-16 are both empty, enhanced otherwise."""
    return header is not None and bool(header.accept_ack_type or header.application_ack_type)


def _wanted(condition: str, success: bool) -> bool:
    """Table 0155: AL always (also when empty), NE never, ER on error, SU on success."""
    condition = condition.upper() or "AL"
    return (
        condition == "AL" or (condition == "ER" and not success) or (condition == "SU" and success)
    )


def replies(
    header: MessageHeader | None,
    application_ack: str,
    code: AckCode,
    *,
    error: HL7Error | None = None,
    now: datetime,
) -> list[str]:
    """What goes back on the wire: the application ACK in original mode; in enhanced mode the
    commit ACK (CA/CE/CR) per MSH-15, then the application ACK per MSH-16."""
    if not is_enhanced_mode(header):
        return [application_ack]
    assert header is not None
    success = code == AckCode.ACCEPT
    out = []
    if _wanted(header.accept_ack_type, success):
        out.append(build_ack(header, _COMMIT_CODES[code], error=error, now=now))
    if _wanted(header.application_ack_type, success):
        out.append(application_ack)
    return out
