"""ingest.example_messages: every kind maps to the event it claims, timed from a `now` the
test owns, about people who are fictitious."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ingest import er7, example_messages, mapping
from schemas.adt import AdtEvent

NY = ZoneInfo("America/New_York")
NOW = datetime(2031, 7, 14, 16, 5, 9, tzinfo=UTC)  # any instant: nothing here reads the clock

EXPECTED = {  # kind: (trigger, PV1-36 disposition)
    "a03": ("A03", "01"),
    "a03-home-health": ("A03", "06"),
    "a03-high-risk": ("A03", "01"),
    "a03-ama": ("A03", "07"),
    "a03-snf": ("A03", "03"),
    "a08": ("A08", "01"),
    "a13": ("A13", ""),
}


def event_of(message: example_messages.Adt, separator: str = "\r") -> AdtEvent:
    raw = example_messages.render(message, separator).encode()
    return mapping.to_event(er7.parse(raw), NY)


def test_every_kind_is_tested() -> None:
    assert set(EXPECTED) == set(example_messages.KINDS)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
@pytest.mark.parametrize("offset", ["-3h", "-2d", "+0h", "-1d6h"])
def test_each_kind_maps_with_its_event_disposition_and_times(kind: str, offset: str) -> None:
    event = event_of(example_messages.build(kind, now=NOW, discharged=offset))
    trigger, disposition = EXPECTED[kind]
    assert event.event_type == trigger
    assert event.header.message_type == "ADT"
    assert event.discharge_disposition == disposition
    assert event.occurred_at == NOW
    discharged = NOW + example_messages.parse_offset(offset)
    if trigger == "A13":  # the discharge is cancelled: the visit is open again
        assert event.discharged_at is None
    else:
        assert event.discharged_at == discharged
    assert event.admitted_at == discharged - example_messages.KINDS[kind].stay
    assert event.patient_class == "I"
    assert event.visit_number and event.patient_identifiers[0].type_code == "MR"


def test_the_high_risk_discharge_carries_a_long_emergency_stay_and_comorbidities() -> None:
    event = event_of(example_messages.build("a03-high-risk", now=NOW))
    assert event.admission_type == "E"
    assert event.diagnosis_codes == ("I50.9", "J44.9", "E11.22")
    assert event.discharged_at is not None and event.admitted_at is not None
    assert event.discharged_at - event.admitted_at == timedelta(days=10)


def test_facility_visit_mrn_and_control_id_are_used_where_given() -> None:
    message = example_messages.build(
        "a03", now=NOW, facility="STV", visit="V77", mrn="M1", control_id="C-1"
    )
    text = example_messages.render(message)
    event = event_of(message)
    assert event.facility == "STV" and event.header.control_id == "C-1"
    assert event.visit_number == "V77"
    assert "|4W^401^A^STV|" in text and "|V77^^^STV^VN|" in text
    assert [(p.id, p.assigning_authority) for p in event.patient_identifiers] == [("M1", "STV")]


def test_control_id_visit_and_mrn_are_fresh_unless_given() -> None:
    first, second = (example_messages.build("a03", now=NOW) for _ in range(2))
    assert first.control_id != second.control_id
    assert first.visit != second.visit
    assert first.mrn != second.mrn
    assert len(first.control_id) <= 20  # MSH-10 is an ST of 20 in v2.5.1


def test_the_kinds_of_one_visit_name_one_patient_unless_an_mrn_is_given() -> None:
    a03, a08 = (example_messages.build(kind, now=NOW, visit="V1001") for kind in ("a03", "a08"))
    assert a03.mrn == a08.mrn and a03.control_id != a08.control_id
    assert example_messages.build("a08", now=NOW, visit="V1002").mrn != a03.mrn
    assert example_messages.build("a08", now=NOW, visit="V1001", mrn="M9").mrn == "M9"


def test_now_defaults_to_the_current_utc_time_to_the_second() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    message = example_messages.build("a03", discharged="-3h")
    after = datetime.now(UTC)
    assert isinstance(message.sent_at, datetime) and before <= message.sent_at <= after
    event = event_of(message)
    assert event.discharged_at == message.sent_at - timedelta(hours=3)


def test_times_are_written_in_the_given_zone_with_its_offset() -> None:
    winter = datetime(2031, 1, 6, 15, 0, tzinfo=UTC)
    text = example_messages.render(example_messages.build("a03", now=winter, zone=NY))
    assert "|20310106100000-0500||ADT^A03^ADT_A03|" in text
    utc = example_messages.render(example_messages.build("a03", now=winter))
    assert "|20310106150000+0000||ADT^A03^ADT_A03|" in utc


def test_lf_separated_v2_3_variant_maps_too() -> None:
    message = replace(example_messages.build("a03-home-health", now=NOW), version="2.3")
    text = example_messages.render(message, "\n")
    assert "\r" not in text and text.count("\n") == 4
    event = event_of(message, "\n")
    assert event.header.version == "2.3" and event.discharge_disposition == "06"


def test_people_and_phone_numbers_are_fictitious() -> None:
    for kind in example_messages.KINDS:
        message = example_messages.build(kind, now=NOW)
        event = event_of(message)
        numbers = [*event.contact_numbers, *(kin.phone for kin in event.next_of_kin)]
        assert numbers, kind
        for number in numbers:
            assert re.fullmatch(r"\d{3}55501\d\d", number), (kind, number)
        assert message.mrn.startswith("EX") and message.visit.startswith("EXV")


def test_a_string_time_is_written_as_is() -> None:
    message = replace(example_messages.build("a03", now=NOW), discharged_at="20261340250000")
    assert "|20261340250000" in example_messages.render(message)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-3h", timedelta(hours=-3)),
        ("-2d", timedelta(days=-2)),
        ("+0h", timedelta()),
        ("now", timedelta()),
        ("-1d6h", timedelta(days=-1, hours=-6)),
        ("-90m", timedelta(minutes=-90)),
        ("+1w", timedelta(weeks=1)),
        (" -2D ", timedelta(days=-2)),
    ],
)
def test_offsets(text: str, expected: timedelta) -> None:
    assert example_messages.parse_offset(text) == expected


@pytest.mark.parametrize("text", ["3h", "-", "", "-3", "-3x", "-h", "--3h", "-3h-2d", "yesterday"])
def test_offsets_that_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an offset"):
        example_messages.parse_offset(text)


def test_unknown_kind_and_naive_now_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        example_messages.build("a99", now=NOW)
    with pytest.raises(ValueError, match="aware"):
        example_messages.build("a03", now=datetime(2031, 1, 1))
