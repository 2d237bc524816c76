"""ER7 -> schemas ADT event: the fields carebridge acts on, and clear refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ingest import er7, mapping
from ingest.errors import HL7Error
from schemas.adt import AckCode
from tests.helpers import FIXTURES, a03

NY = ZoneInfo("America/New_York")


def event_of(raw: bytes):  # type: ignore[no-untyped-def]
    return mapping.to_event(er7.parse(raw), NY)


def test_example_discharge_maps_the_fields_the_workflow_needs() -> None:
    event = event_of((FIXTURES / "adt_a03.hl7").read_bytes())
    assert event.event_type == "A03"
    assert event.header.control_id == "GH20261120-0001"
    assert event.header.sending_facility == "GENHOSP"
    assert event.header.version == "2.5.1"
    assert event.facility == "GENHOSP"
    assert event.visit_number == "V0000123"
    assert event.patient_class == "I"
    assert event.discharge_disposition == "01"
    assert event.discharged_at == datetime(2026, 11, 20, 14, 0, tzinfo=NY)
    assert event.admitted_at == datetime(2026, 11, 16, 8, 0, tzinfo=NY)
    assert [(p.id, p.assigning_authority, p.type_code) for p in event.patient_identifiers] == [
        ("100234", "GENHOSP", "MR")
    ]
    assert event.death_indicator is False


def test_lf_separated_v23_message_with_offsets_and_repeated_identifiers() -> None:
    event = event_of((FIXTURES / "adt_a03_lf_v23.hl7").read_bytes())
    assert event.header.version == "2.3"
    assert event.discharge_disposition == "06"
    eastern_standard = timezone(timedelta(hours=-5))
    assert event.discharged_at == datetime(2026, 11, 25, 10, 0, tzinfo=eastern_standard)
    assert [p.type_code for p in event.patient_identifiers] == ["MR", "SS"]


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
def test_segment_separators_real_feeds_send_are_all_accepted(separator: str) -> None:
    event = event_of(a03(visit="V42", separator=separator))
    assert event.visit_number == "V42"
    assert event.discharge_disposition == "01"


def test_bom_and_trailing_blank_lines_are_tolerated() -> None:
    event = event_of(b"\xef\xbb\xbf" + a03(visit="V7") + b"\r\n\r\n\n")
    assert event.visit_number == "V7"


def test_escape_sequences_are_decoded() -> None:
    raw = a03(visit="V\\F\\1\\X41\\")
    assert event_of(raw).visit_number == "V|1A"


def test_non_default_encoding_characters() -> None:
    raw = (
        "MSH#$~\\&#EPIC#GH#CB#CB#20261120143000##ADT$A03$ADT_A03#C1#P#2.4\r"
        "EVN#A03#20261120143000\r"
        "PID#1##77$$$GH$MR##TEST$PAT\r"
        "PV1#1#I" + "#" * 17 + "V9$$$GH#" + "#" * 16 + "01" + "#" * 9 + "20261120140000\r"
    ).encode()
    event = event_of(raw)
    assert event.header.encoding.field == "#"
    assert event.header.encoding.component == "$"
    assert event.header.trigger_event == "A03"
    assert event.visit_number == "V9"
    assert event.discharge_disposition == "01"


def test_missing_discharge_time_falls_back_to_the_event_time() -> None:
    sent = datetime(2026, 11, 20, 19, 30, tzinfo=UTC)
    raw = a03(discharged="", now=sent)
    assert event_of(raw).discharged_at == sent


def test_missing_visit_number_is_an_application_error_naming_pv1_19() -> None:
    raw = a03(visit="X").replace(b"X^^^", b"^^^")
    with pytest.raises(HL7Error) as info:
        event_of(raw)
    assert info.value.ack_code == AckCode.ERROR
    assert (info.value.segment, info.value.field) == ("PV1", 19)


def test_non_adt_message_is_rejected() -> None:
    raw = a03().replace(b"ADT^A03^ADT_A03", b"ORU^R01^ORU_R01")
    with pytest.raises(HL7Error) as info:
        event_of(raw)
    assert info.value.ack_code == AckCode.REJECT
    assert info.value.condition[0] == "200"


def test_unsupported_version_is_rejected() -> None:
    raw = a03().replace(b"|P|2.5.1", b"|P|9.9")
    with pytest.raises(HL7Error) as info:
        event_of(raw)
    assert info.value.ack_code == AckCode.REJECT
    assert info.value.field == 12


def test_impossible_timestamp_is_an_error_not_a_crash() -> None:
    with pytest.raises(HL7Error) as info:
        event_of(a03(discharged="20261340250000"))
    assert info.value.ack_code == AckCode.ERROR
    assert info.value.field == 45


@pytest.mark.parametrize(
    "raw", [b"", b"hello", b"\x00\xff\xfe", b"PID|1||123", b"MSH", "MSH|^~\\&|\u00e9".encode()]
)
def test_garbage_is_an_hl7_error(raw: bytes) -> None:
    with pytest.raises(HL7Error):
        event_of(raw)


def test_death_indicator_is_read() -> None:
    raw = a03().replace(b"|F\r", b"|F" + b"|" * 22 + b"Y\r")
    assert event_of(raw).death_indicator is True


def test_a_segment_name_with_no_fields_is_not_a_crash() -> None:
    # Found by hypothesis: "PID\r" split from its fields by a stray CR.
    raw = a03().replace(b"PID|1|", b"PID\r|1|")
    with pytest.raises(HL7Error):
        event_of(raw.replace(b"PV1|", b"XXX|"))
    with pytest.raises(HL7Error) as info:  # a PID without fields has no PID-3: refused cleanly
        event_of(raw)
    assert (info.value.segment, info.value.field) == ("PID", 3)
