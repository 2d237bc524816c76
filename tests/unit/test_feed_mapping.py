"""The mapping of the feed's SIU and MDM messages (ingest/feed_mapping.py): what is refused,
with which ACK code and field, and what is read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest import er7, feed_examples, mapping
from ingest.errors import HL7Error
from schemas.adt import AckCode, AdtEvent
from schemas.feed import FeedConfig, PracticeClinic

NY = ZoneInfo("America/New_York")
START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=5)


def event_of(text: str) -> AdtEvent:
    return mapping.to_event(er7.parse(text.encode()), NY)


def without(text: str, segment: str) -> str:
    return "\r".join(s for s in text.split("\r") if not s.startswith(segment))


def test_a_booking_reads_its_start_from_ais_else_tq1_else_sch_11() -> None:
    raw = feed_examples.siu("S12", start=START, appointment_id="A9")
    assert event_of(raw).appointment is not None
    for dropped in ("AIS", "TQ1"):
        raw = without(raw, dropped)
        found = event_of(raw).appointment
        assert found is not None and found.at == START and found.id == "A9"


def test_a_booking_without_a_start_time_is_refused_with_ae() -> None:
    raw = without(without(feed_examples.siu("S12", start=START), "AIS"), "TQ1")
    raw = raw.replace(f"^^^{START.strftime('%Y%m%d%H%M%S+0000')}", "")
    with pytest.raises(HL7Error) as info:
        event_of(raw)
    assert info.value.ack_code == AckCode.ERROR and "start time" in str(info.value)


def test_a_cancellation_needs_no_start_time() -> None:
    raw = without(without(feed_examples.siu("S15", start=START), "AIS"), "TQ1")
    assert event_of(raw).event_type == "S15"


def test_an_siu_without_sch_or_an_unsupported_trigger_is_refused() -> None:
    with pytest.raises(HL7Error) as missing:
        event_of(without(feed_examples.siu("S12", start=START), "SCH"))
    assert missing.value.ack_code == AckCode.ERROR and missing.value.segment == "SCH"
    with pytest.raises(HL7Error) as unsupported:
        event_of(feed_examples.siu("S16", start=START))
    assert unsupported.value.ack_code == AckCode.REJECT
    assert unsupported.value.condition[0] == "200"


def test_an_mdm_reads_the_document_type_and_time_and_needs_txa() -> None:
    written = START - timedelta(days=4)
    event = event_of(feed_examples.mdm("T04", written=written, visit="V1"))
    assert event.document is not None
    assert (event.document.type, event.document.at) == ("DS", written)
    with pytest.raises(HL7Error) as info:
        event_of(without(feed_examples.mdm(written=written, visit="V1"), "TXA"))
    assert info.value.segment == "TXA"


def test_a_practice_clinic_matches_its_point_of_care_and_facility() -> None:
    feed = FeedConfig(
        practice_clinics=(
            PracticeClinic(location="PCP1"),
            PracticeClinic(location="PCP2", facility="NORTH"),
        ),
    )
    assert feed.clinic_at("ANY", "PCP1^^^ANY") is not None
    assert feed.clinic_at("SOUTH", "PCP2^^") is None
    assert feed.clinic_at("NORTH", "PCP2") is not None
    assert feed.clinic_at("ANY", "4W^401^A") is None


def test_an_oru_is_unsupported_unless_the_site_lists_result_codes() -> None:
    written = START - timedelta(days=4)
    raw = feed_examples.oru(written=written, visit="V1")
    with pytest.raises(HL7Error) as info:
        event_of(raw)
    assert info.value.ack_code == AckCode.REJECT and info.value.condition[0] == "200"
    event = mapping.to_event(er7.parse(raw.encode()), NY, results=True)
    assert event.document is not None
    assert (event.document.type, event.document.at, event.visit_number) == (
        "18842-5",
        written,
        "V1",
    )
