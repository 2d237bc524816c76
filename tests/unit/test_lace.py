"""LACE points per the published table; Charlson categories from ICD-10 codes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from ingest import er7, mapping
from ingest.risk import charlson_categories, lace, length_of_stay_days, length_of_stay_points
from schemas.protocol import RiskTier
from tests.helpers import a03

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("days", "points"), [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (6, 4), (7, 5), (13, 5), (14, 7)]
)
def test_length_of_stay_points(days: int, points: int) -> None:
    assert length_of_stay_points(days) == points


def test_charlson_categories_take_the_severe_form_once() -> None:
    found = charlson_categories(["I50.9", "E11.9", "E11.22", "C78.0", "C34.1", "J44.1", "Z00"])
    assert found == {
        "heart_failure",
        "diabetes_with_end_organ_damage",
        "metastatic_solid_tumour",
        "chronic_pulmonary",
    }


def score(**overrides: object) -> object:
    arguments: dict[str, object] = {
        "admitted_at": datetime(2026, 11, 10, 8, 0, tzinfo=NY),
        "discharged_at": datetime(2026, 11, 20, 14, 0, tzinfo=NY),
        "zone": NY,
        "admission_type": "E",
        "acute_admission_types": ("E",),
        "diagnosis_codes": ("I50.9", "J44.1"),
        "ed_visits": 2,
        "high_risk_threshold": 10,
    }
    arguments.update(overrides)
    return lace(**arguments)  # type: ignore[arg-type]


def test_a_high_risk_patient() -> None:
    risk = score()
    # L: 10 days -> 5; A: emergency -> 3; C: CHF 2 + COPD 2 = 4 -> 5; E: 2 -> 2.
    assert (risk.length_of_stay_points, risk.acute_points, risk.comorbidity_points) == (5, 3, 5)
    assert (risk.charlson_score, risk.ed_points, risk.lace) == (4, 2, 15)
    assert risk.tier == RiskTier.HIGH
    assert risk.notes == ()


def test_a_standard_risk_patient_and_the_threshold() -> None:
    risk = score(admission_type="R", diagnosis_codes=(), ed_visits=0)
    assert risk.lace == 5 and risk.tier == RiskTier.STANDARD
    assert "no DG1 diagnoses: C counted as 0" in risk.notes
    assert score(high_risk_threshold=15).tier == RiskTier.HIGH
    assert score(high_risk_threshold=16).tier == RiskTier.STANDARD


def test_missing_inputs_are_noted_not_guessed() -> None:
    risk = score(admitted_at=None, ed_visits=None, admission_type="")
    assert risk.length_of_stay_points == 0 and risk.ed_points == 0
    assert len(risk.notes) == 3


def test_dg1_codes_and_admission_type_come_from_the_message() -> None:
    raw = (
        a03().replace(b"PV1|1|I|", b"PV1|1|I|")
        + b"DG1|1||I50.9^Heart failure^I10\rDG1|2||E11.22^^I10\r"
    )
    raw = raw.replace(b"\r\r", b"\r")
    event = mapping.to_event(er7.parse(raw), NY)
    assert event.diagnosis_codes == ("I50.9", "E11.22")


EDT, EST = timezone(timedelta(hours=-4)), timezone(timedelta(hours=-5))


@pytest.mark.parametrize(
    ("admitted", "discharged", "days"),
    [
        # November: admitted Saturday 00:30 EDT, discharged Tuesday 14:00 EST (3 midnights).
        (datetime(2027, 11, 6, 0, 30, tzinfo=EDT), datetime(2027, 11, 9, 14, 0, tzinfo=EST), 3),
        # The same stay written without offsets (the facility's zone).
        (datetime(2027, 11, 6, 0, 30, tzinfo=NY), datetime(2027, 11, 9, 14, 0, tzinfo=NY), 3),
        # March: admitted Saturday 23:30 EST, discharged Tuesday 00:30 EDT.
        (datetime(2027, 3, 13, 23, 30, tzinfo=EST), datetime(2027, 3, 16, 0, 30, tzinfo=EDT), 3),
        # Admitted 23:30 EST the night before the spring change, out at 03:30 EDT: 1 night.
        (datetime(2027, 3, 13, 23, 30, tzinfo=EST), datetime(2027, 3, 14, 3, 30, tzinfo=EDT), 1),
    ],
)
def test_length_of_stay_counts_local_dates_across_daylight_saving(
    admitted: datetime, discharged: datetime, days: int
) -> None:
    assert length_of_stay_days(admitted, discharged, NY) == days
    assert score(admitted_at=admitted, discharged_at=discharged).length_of_stay_days == days


def test_lace_tier_does_not_flip_across_the_november_change() -> None:
    """LOS 3 (L3) not 4 (L4): LACE 9, standard risk, as the issue reported it."""
    risk = score(
        admitted_at=datetime(2027, 11, 6, 0, 30, tzinfo=EDT),
        discharged_at=datetime(2027, 11, 9, 14, 0, tzinfo=EST),
        diagnosis_codes=("I50.9",),  # C 2
        ed_visits=1,  # E 1
    )
    assert (risk.length_of_stay_points, risk.lace, risk.tier) == (3, 9, RiskTier.STANDARD)


def test_length_of_stay_is_counted_in_the_facility_zone_not_the_stamps_offset() -> None:
    honolulu = ZoneInfo("Pacific/Honolulu")
    admitted = datetime(2027, 1, 4, 20, 0, tzinfo=honolulu)  # Monday evening in Hawaii
    discharged = datetime(2027, 1, 5, 8, 0, tzinfo=honolulu)
    # In New York the admission is already Tuesday: 0 nights there, 1 in Honolulu.
    assert length_of_stay_days(admitted, discharged, NY) == 0
    assert length_of_stay_days(admitted, discharged, honolulu) == 1
