"""The demographics the mapping reads for the patient registry: PID-5 name, PID-7 birth date,
PID-8 sex, PID-11 address, the principal DG1 and the unit; `""` clears, empty keeps."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from ingest import er7, mapping
from ingest.errors import HL7Error
from schemas.adt import AdtEvent
from tests.helpers import a03, with_field

NY = ZoneInfo("America/New_York")
NULL = '""'


def event_of(raw: bytes) -> AdtEvent:
    return mapping.to_event(er7.parse(raw), NY)


def with_segments(raw: bytes, *segments: str) -> bytes:
    return raw + "".join(f"{s}\r" for s in segments).encode()


def test_name_birth_date_and_sex_come_from_the_first_pid5_repetition_pid7_and_pid8() -> None:
    raw = with_field(a03(), "PID", 5, "GARCIA^MARIA^LUZ^^^^L~GARCIA-LOPEZ^MARIA^^^^^M")
    event = event_of(with_field(with_field(raw, "PID", 7, "19410922"), "PID", 8, "F"))
    assert (event.family_name, event.given_name, event.middle_name) == ("GARCIA", "MARIA", "LUZ")
    assert event.birth_date == date(1941, 9, 22)
    assert event.sex == "F"
    assert event.cleared == ()


def test_a_birth_time_with_an_offset_keeps_the_date_as_written() -> None:
    event = event_of(with_field(a03(), "PID", 7, "198808181126+0215"))
    assert event.birth_date == date(1988, 8, 18)


def test_a_birth_year_alone_is_no_birth_date_and_garbage_is_refused_naming_pid7() -> None:
    assert event_of(with_field(a03(), "PID", 7, "1948")).birth_date is None
    with pytest.raises(HL7Error) as refused:
        event_of(with_field(a03(), "PID", 7, "12/03/1948"))
    assert (refused.value.segment, refused.value.field) == ("PID", 7)
    assert "1948" not in str(refused.value)  # never the value: PHI


def test_the_null_clears_a_name_part_and_the_fields_while_empty_only_means_not_sent() -> None:
    raw = with_field(a03(), "PID", 5, f"DOE^{NULL}^")
    for field in (7, 8, 11, 15):
        raw = with_field(raw, "PID", field, NULL)
    event = event_of(with_segments(raw, f"PD1|||GENERAL PRACTICE|{NULL}"))
    assert set(event.cleared) == {"given_name", "birth_date", "sex", "address", "language", "pcp"}
    assert (event.given_name, event.birth_date, event.sex, event.address) == ("", None, "", "")
    empty = event_of(with_field(with_field(a03(), "PID", 5, "DOE^^"), "PID", 7, ""))
    assert empty.cleared == () and empty.birth_date is None


def test_the_address_is_the_first_pid11_repetition_on_one_line() -> None:
    raw = with_field(
        a03(),
        "PID",
        11,
        "1000&Hospital Lane^Ste. 123^Ann Arbor^MI^99999^USA^M~PO BOX 1^^ELSEWHERE^MI",
    )
    assert event_of(raw).address == "1000 Hospital Lane, Ste. 123, Ann Arbor, MI 99999, USA"
    assert event_of(with_field(a03(), "PID", 11, "12 ELM ST^^SPRINGFIELD^MA^01101")).address == (
        "12 ELM ST, SPRINGFIELD, MA 01101"
    )


def test_the_principal_diagnosis_is_the_dg1_with_priority_1_else_the_first() -> None:
    first = "DG1|1||I50.9^Heart failure, unspecified^I10"
    ranked = "DG1|2||J44.9^COPD, unspecified^I10||||||||||||1"
    event = event_of(with_segments(a03(), first, ranked))
    assert (event.principal_diagnosis, event.principal_diagnosis_text) == (
        "J44.9",
        "COPD, unspecified",
    )
    only_first = event_of(with_segments(a03(), first, "DG1|2||E11.22^Diabetes^I10"))
    assert only_first.principal_diagnosis == "I50.9"
    assert only_first.principal_diagnosis_text == "Heart failure, unspecified"
    assert event_of(a03()).principal_diagnosis == ""


def test_the_unit_is_pv1_3_point_of_care() -> None:
    assert event_of(with_field(a03(), "PV1", 3, "5E^512^B^GENHOSP")).unit == "5E"


def test_the_pcp_name_is_the_first_pd1_4_provider_else_the_rol_pcp() -> None:
    pd1 = "PD1|||GENERAL PRACTICE|1234567890^WELBY^MARCUS^^^^^^NPI"
    rol = "ROL|1|AD|PP^Primary Care Provider^HL70443|D77^KILDARE^JAMES"
    assert event_of(with_segments(a03(), pd1, rol)).pcp_name == "MARCUS WELBY"
    assert event_of(with_segments(a03(), rol)).pcp_name == "JAMES KILDARE"
    assert event_of(with_segments(a03(), "PD1|||GP|D55")).pcp_name == ""
