"""ACKs an interface engine accepts: swapped MSH, MSA-2 = MSH-10, ERR on errors."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest import er7, mapping
from ingest.ack import build_ack, escape
from ingest.errors import HL7Error
from schemas.adt import AckCode, EncodingCharacters
from tests.helpers import a03, msa, segment

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_accept_ack_swaps_sender_and_receiver_and_echoes_control_id() -> None:
    header = mapping.header(er7.parse(a03(facility="GENHOSP", control_id="CTRL1")))
    ack = build_ack(header, AckCode.ACCEPT, now=NOW)
    msh = segment(ack, "MSH")
    assert msh is not None
    fields = msh.split("|")
    assert fields[1] == "^~\\&"
    assert fields[2:6] == ["CAREBRIDGE", "CB", "EPIC", "GENHOSP"]
    assert fields[8] == "ACK^A03^ACK"
    assert fields[10:12] == ["P", "2.5.1"]
    assert msa(ack)[1:3] == ["AA", "CTRL1"]
    assert segment(ack, "ERR") is None
    assert ack.endswith("\r")


def test_error_ack_has_an_err_segment_with_location_and_code() -> None:
    header = mapping.header(er7.parse(a03()))
    error = HL7Error(AckCode.ERROR, "PV1-19 visit number is required", "PV1", 19)
    ack = build_ack(header, AckCode.ERROR, error=error, now=NOW)
    assert msa(ack)[1] == "AE"
    assert msa(ack)[3] == "PV1-19 visit number is required"
    err = segment(ack, "ERR")
    assert err is not None
    fields = err.split("|")
    assert fields[2] == "PV1^1^19"
    assert fields[3] == "101^Required field missing^HL70357"
    assert fields[4] == "E"


def test_pre_25_err_segment_uses_err_1() -> None:
    header = mapping.header(er7.parse(a03().replace(b"|P|2.5.1", b"|P|2.3")))
    error = HL7Error(AckCode.ERROR, "missing", "PV1", 19)
    err = segment(build_ack(header, AckCode.ERROR, error=error, now=NOW), "ERR")
    assert err == "ERR|PV1^1^19^101&Required field missing"


def test_ack_for_unreadable_message_is_still_valid_hl7() -> None:
    error = HL7Error(AckCode.REJECT, "message does not start with an MSH segment", "MSH", 1)
    ack = build_ack(None, AckCode.REJECT, error=error, now=NOW)
    parsed = er7.parse(ack.encode())
    assert er7.value(parsed, "MSA", 1) == "AR"
    assert er7.value(parsed, "MSA", 2) == ""
    assert er7.value(parsed, "MSH", 12) == "2.5.1"


def test_ack_uses_the_senders_encoding_characters() -> None:
    raw = (
        "MSH#$~\\&#EPIC#GH#CB#CB#20261120143000##ADT$A08$ADT_A01#C9#P#2.4\r"
        "PV1#1#I" + "#" * 17 + "V9\r"
    ).encode()
    header = mapping.header(er7.parse(raw))
    ack = build_ack(header, AckCode.ACCEPT, text="a#b$c", now=NOW)
    assert ack.startswith("MSH#$~\\&#CB#CB#EPIC#GH#")
    assert "MSA#AA#C9#a\\F\\b\\S\\c" in ack


def test_escape_covers_every_delimiter() -> None:
    enc = EncodingCharacters()
    assert escape("a|b^c&d~e\\f", enc) == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"
