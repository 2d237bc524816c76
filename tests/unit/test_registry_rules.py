"""The registry's pure rules (store/registry_rules.py): a newer event replaces and its `""`
clears, a late one only fills gaps, a merge fills the survivor's gaps, what a search query
asks for, length of stay in midnights and age in completed years."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from schemas.adt import AdtEvent, MessageHeader, NextOfKin, PatientIdentifier
from store.registry_rules import (
    ENCOUNTER_FIELDS,
    PATIENT_FIELDS,
    EncounterDetails,
    PatientRecord,
    apply,
    encounter_document,
    encounter_of,
    encounter_update,
    fill_gaps,
    index_terms,
    is_newer,
    parse_query,
    patient_document,
    patient_of,
    patient_update,
)

NY = ZoneInfo("America/New_York")
T0 = datetime(2025, 3, 10, 14, 0, tzinfo=UTC)  # a clock the test owns
MRN = PatientIdentifier(id="100234", assigning_authority="GENHOSP", type_code="MR")
KEPT = PatientRecord(
    patient_key="k1",
    family_name="DOE",
    given_name="JANE",
    middle_name="Q",
    birth_date=date(1948, 3, 12),
    sex="F",
    identifiers=(MRN,),
    phones=("4135550142",),
    address="12 ELM ST, SPRINGFIELD, MA 01101",
    language="ENG",
    pcp="MARCUS WELBY",
    caregivers=(NextOfKin(name="JOHN DOE", relationship="SPO", phone="4135550143"),),
)


def event(**fields: object) -> AdtEvent:
    defaults: dict[str, object] = {
        "header": MessageHeader(),
        "event_type": "A08",
        "facility": "GENHOSP",
        "occurred_at": T0,
    }
    return AdtEvent.model_validate({**defaults, **fields})


def applied(current: PatientRecord, update: AdtEvent, *, newer: bool) -> PatientRecord:
    sent, cleared = patient_update(update, current.patient_key)
    return apply(current, sent, cleared, newer=newer, names=PATIENT_FIELDS)


def test_a_newer_event_replaces_what_it_sends_and_keeps_what_it_leaves_empty() -> None:
    update = event(contact_numbers=("4135550199",), family_name="DOE-SMITH")
    after = applied(KEPT, update, newer=True)
    assert after.phones == ("4135550199",)
    assert after.family_name == "DOE-SMITH"
    assert (after.given_name, after.birth_date, after.address) == (
        "JANE",
        date(1948, 3, 12),
        "12 ELM ST, SPRINGFIELD, MA 01101",
    )
    assert after.caregivers == KEPT.caregivers and after.identifiers == (MRN,)


def test_the_hl7_null_clears_in_a_newer_event() -> None:
    update = event(
        cleared=("middle_name", "address", "pcp", "birth_date"), contact_numbers_cleared=True
    )
    after = applied(KEPT, update, newer=True)
    assert (after.middle_name, after.address, after.pcp, after.birth_date) == ("", "", "", None)
    assert after.phones == ()
    assert after.family_name == "DOE"


def test_a_late_older_event_only_fills_the_gaps_and_never_clears() -> None:
    sparse = PatientRecord(patient_key="k1", family_name="DOE", phones=("4135550199",))
    late = event(
        family_name="DOE-OLD",
        given_name="JANE",
        contact_numbers=("4135550142",),
        birth_date=date(1948, 3, 12),
        cleared=("family_name",),
        contact_numbers_cleared=False,
    )
    after = applied(sparse, late, newer=False)
    assert after.family_name == "DOE"  # kept: the record is newer
    assert after.phones == ("4135550199",)
    assert after.given_name == "JANE" and after.birth_date == date(1948, 3, 12)  # gaps filled


def test_newer_means_not_older_than_the_newest_event_applied() -> None:
    assert is_newer(T0, None)
    assert is_newer(T0, T0)  # the same message again: applied again, the same result
    assert is_newer(T0 + timedelta(minutes=1), T0)
    assert not is_newer(T0 - timedelta(days=7), T0)
    assert not is_newer(None, T0)  # an undated event cannot show it is newer


def test_a_merge_keeps_the_survivors_values_fills_its_gaps_and_names_the_merged_keys() -> None:
    survivor = PatientRecord(
        patient_key="s", family_name="DOE", phones=("4135550199",), merged_from=("older",)
    )
    merged = PatientRecord(
        patient_key="m",
        family_name="ROE",
        given_name="JANE",
        phones=("4135550142",),
        merged_from=("earlier",),
    )
    after = fill_gaps(survivor, merged)
    assert (after.family_name, after.given_name, after.phones) == ("DOE", "JANE", ("4135550199",))
    assert after.merged_from == ("older", "m", "earlier")
    assert fill_gaps(after, merged) == after  # repeated: no change


def test_a_merge_keeps_the_merged_records_identifiers_as_previous_ones() -> None:
    new, old, older = (PatientIdentifier(id=i, type_code="MR") for i in ("M2", "M1", "M0"))
    survivor = PatientRecord(patient_key="s", identifiers=(new,))
    merged = PatientRecord(patient_key="m", identifiers=(old, new), previous_identifiers=(older,))
    after = fill_gaps(survivor, merged)
    assert after.identifiers == (new,) and after.mrn == "M2"
    assert after.previous_identifiers == (old, older)  # the survivor's own MRN is not repeated
    assert patient_of(patient_document(after), "s").previous_identifiers == (old, older)


def test_a_diagnosis_code_sent_without_its_text_drops_the_old_text() -> None:
    kept = EncounterDetails("t1", "k1", "I50.9", "Heart failure", "4W")
    sent, cleared = encounter_update(event(principal_diagnosis="J44.9"), "t1", "k1")
    after = apply(kept, sent, cleared, newer=True, names=ENCOUNTER_FIELDS)
    assert (after.principal_diagnosis, after.principal_diagnosis_text, after.unit) == (
        "J44.9",
        "",
        "4W",
    )


def test_index_terms_cover_every_identifier_phone_the_birth_date_and_name_prefixes() -> None:
    terms = set(index_terms(KEPT))
    assert {("mrn", "100234"), ("phone", "4135550142"), ("birth_date", "1948-03-12")} <= terms
    assert ("phone_local", "5550142") in terms  # found by the number without its area code
    assert {("name", "DO"), ("name", "DOE"), ("name", "JA"), ("name", "JANE")} <= terms
    assert ("name", "Q") not in terms  # the middle name is not searched
    assert not any(kind.startswith("phone") and "5550143" in value for kind, value in terms)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("1948-03-12", [(("birth_date", "1948-03-12"),)]),
        ("3/12/1948", [(("birth_date", "1948-03-12"),)]),
        ("19480312", [(("birth_date", "1948-03-12"),), (("mrn", "19480312"),)]),
        ("(413) 555-0142", [(("phone", "4135550142"),), (("mrn", "(413)555-0142"),)]),
        ("1-413-555-0142", [(("phone", "4135550142"),), (("mrn", "1-413-555-0142"),)]),
        ("1002345", [(("phone_local", "1002345"),), (("mrn", "1002345"),)]),
        ("555-0142", [(("phone_local", "5550142"),), (("mrn", "555-0142"),)]),
        ("garc", [(("name", "GARC"),), (("mrn", "GARC"),)]),
        ("Doe Jane", [(("name", "DOE"), ("name", "JANE")), (("mrn", "DOEJANE"),)]),
        ("Doe J", [(("name", "DOE"),), (("mrn", "DOEJ"),)]),
        ("Núñez", [(("name", "NUNEZ"),), (("mrn", "NÚÑEZ"),)]),
        ("ex 12", [(("name", "EX"), ("name", "12")), (("mrn", "EX12"),)]),
        ("2025-02-30", [(("phone", "20250230"),), (("mrn", "2025-02-30"),)]),  # no such day
        ("  ", []),
    ],
)
def test_a_query_asks_for_a_birth_date_a_phone_or_mrn_or_name_prefixes_or_an_mrn(
    query: str, expected: list[tuple[tuple[str, str], ...]]
) -> None:
    assert parse_query(query) == expected


def test_a_long_name_word_is_searched_by_its_longest_indexed_prefix() -> None:
    record = PatientRecord(patient_key="k", family_name="WOLFESCHLEGELSTEIN")
    (by_name, _) = parse_query("wolfeschlegelst")
    assert set(by_name) <= set(index_terms(record))


def test_length_of_stay_counts_midnights_on_the_facility_clock() -> None:
    admitted = datetime(2025, 3, 5, 23, 30, tzinfo=NY)
    stay = EncounterDetails(
        "t", "k", admitted_at=admitted, discharged_at=admitted + timedelta(hours=1)
    )
    assert stay.length_of_stay_days == 1  # in at 23:30, out at 00:30: one midnight
    same_day = EncounterDetails(
        "t", "k", admitted_at=admitted - timedelta(hours=10), discharged_at=admitted
    )
    assert same_day.length_of_stay_days == 0
    four = EncounterDetails(
        "t", "k", admitted_at=admitted, discharged_at=admitted + timedelta(days=4)
    )
    assert four.length_of_stay_days == 4
    assert EncounterDetails("t", "k", discharged_at=admitted).length_of_stay_days is None
    backwards = EncounterDetails(
        "t", "k", admitted_at=admitted, discharged_at=admitted - timedelta(days=2)
    )
    assert backwards.length_of_stay_days is None


def test_age_is_completed_years_on_the_day_asked() -> None:
    leap = PatientRecord(patient_key="k", birth_date=date(1948, 2, 29))
    assert leap.age_on(date(2025, 2, 28)) == 76
    assert leap.age_on(date(2025, 3, 1)) == 77
    assert KEPT.age_on(date(2025, 3, 11)) == 76 and KEPT.age_on(date(2025, 3, 12)) == 77
    assert KEPT.age_on(date(1940, 1, 1)) is None
    assert PatientRecord(patient_key="k").age_on(date(2025, 1, 1)) is None


def test_display_name_and_mrn() -> None:
    assert KEPT.display_name == "JANE Q DOE"
    assert PatientRecord(patient_key="k").display_name == ""
    other = PatientIdentifier(id="X9", assigning_authority="SSA", type_code="SS")
    assert PatientRecord(patient_key="k", identifiers=(other, MRN)).mrn == "100234"
    assert PatientRecord(patient_key="k", identifiers=(other,)).mrn == "X9"
    assert PatientRecord(patient_key="k").mrn == ""


def test_documents_round_trip_what_is_sealed() -> None:
    assert patient_of(patient_document(KEPT), "k1") == KEPT
    details = EncounterDetails(
        "t1", "k1", "I50.9", "Heart failure", "4W", T0 - timedelta(days=4), T0, "01"
    )
    assert encounter_of(encounter_document(details, T0), "t1", "k1") == (details, T0)
