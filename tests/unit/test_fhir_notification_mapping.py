"""Da Vinci notification Bundles to AdtEvents (ingest/fhir_notifications.py), and
`carebridge example fhir-discharge`, the walk-through's Bundle."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fhir.resources.R4B.bundle import Bundle
from typer.testing import CliRunner

from ingest import er7, mapping
from ingest.fhir_examples import discharge_bundle
from ingest.fhir_notifications import FhirRefusal, read, to_event
from schemas.adt import AdtEvent
from tests.helpers import a03
from workers.cli.main import app

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 9, 15, 30, tzinfo=UTC)  # a clock the test owns


def event_of(bundle: dict[str, Any]) -> AdtEvent:
    return to_event(read(json.dumps(bundle).encode()), lambda _: NY)


def encounter(bundle: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = bundle["entry"][1]["resource"]
    assert found["resourceType"] == "Encounter"
    return found


def test_the_example_bundle_maps_to_the_event_the_same_a03_maps_to() -> None:
    bundle = discharge_bundle(NOW, facility="GENHOSP", visit="V77", mrn="M100234")
    fhir = event_of(bundle)
    hl7 = mapping.to_event(
        er7.parse(a03(facility="GENHOSP", visit="V77", mrn="M100234", now=NOW)), NY
    )

    assert (fhir.event_type, fhir.facility, fhir.visit_number) == ("A03", "GENHOSP", "V77")
    assert fhir.patient_identifiers == hl7.patient_identifiers  # same patient key
    assert fhir.discharged_at == hl7.discharged_at == NOW - timedelta(hours=2)
    assert fhir.discharge_disposition == "01"  # NUBC "1" as PV1-36 writes it
    assert fhir.patient_class == "I"
    assert fhir.diagnosis_codes == ("J18.9",)
    assert (fhir.family_name, fhir.given_name, fhir.sex) == ("Doe", "Jane", "F")
    assert fhir.header.control_id == bundle["entry"][0]["resource"]["id"]


@pytest.mark.parametrize(
    ("coding", "expected"),
    [
        ({"system": "http://www.nubc.org/patient-discharge", "code": "3"}, "03"),
        ({"system": "http://www.nubc.org/patient-discharge", "code": "62"}, "62"),
        (
            {
                "system": "http://terminology.hl7.org/CodeSystem/discharge-disposition",
                "code": "snf",
            },
            "03",
        ),
        ({"system": "http://example.org/local", "code": "9"}, ""),
    ],
)
def test_discharge_dispositions_map_to_the_codes_pv1_36_carries(
    coding: dict[str, str], expected: str
) -> None:
    bundle = discharge_bundle(NOW)
    encounter(bundle)["hospitalization"]["dischargeDisposition"] = {"coding": [coding]}
    assert event_of(bundle).discharge_disposition == expected


def test_encounter_diagnoses_come_rank_first_and_only_icd10_counts() -> None:
    bundle = discharge_bundle(NOW)
    condition = {
        "fullUrl": "urn:uuid:11111111-2222-3333-4444-555555555555",
        "resource": {
            "resourceType": "Condition",
            "id": "c2",
            "subject": encounter(bundle)["subject"],
            "code": {
                "coding": [
                    {"system": "http://example.org/conditions", "code": "1234"},
                    {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I50.9"},
                ]
            },
        },
    }
    bundle["entry"].append(condition)
    encounter(bundle)["diagnosis"] = [{"condition": {"reference": condition["fullUrl"]}, "rank": 1}]
    event = event_of(bundle)
    assert event.diagnosis_codes == ("I50.9", "J18.9")
    assert event.principal_diagnosis == "I50.9"


def test_admit_and_transfer_carry_a01_and_a02() -> None:
    admit = discharge_bundle(NOW, event="notification-admit")
    encounter(admit)["status"] = "in-progress"
    del encounter(admit)["period"]["end"]
    event = event_of(admit)
    assert (event.event_type, event.discharged_at) == ("A01", None)
    assert event_of(discharge_bundle(NOW, event="notification-transfer")).event_type == "A02"


def test_a_date_without_a_time_is_read_in_the_facility_zone() -> None:
    bundle = discharge_bundle(NOW)
    encounter(bundle)["period"] = {"start": "2026-03-05", "end": "2026-03-09"}
    assert event_of(bundle).discharged_at == datetime(2026, 3, 9, tzinfo=NY)


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        (lambda b: b["entry"][0]["resource"].pop("focus"), "MessageHeader.focus"),
        (lambda b: encounter(b).pop("subject"), "Encounter.subject"),
        (lambda b: encounter(b).pop("identifier"), "Encounter.identifier"),
        (lambda b: encounter(b).update(status="in-progress"), "Encounter.status"),
        (
            lambda b: b["entry"][0]["resource"].update(eventCoding={"code": "x"}),
            "MessageHeader.eventCoding",
        ),
    ],
)
def test_what_cannot_be_mapped_is_refused_naming_the_element(change: Any, expression: str) -> None:
    bundle = discharge_bundle(NOW)
    change(bundle)
    with pytest.raises(FhirRefusal) as refused:
        event_of(bundle)
    assert (refused.value.status, refused.value.expression) == (400, expression)
    assert refused.value.text.endswith(".")


def test_without_a_sender_the_service_provider_names_the_facility() -> None:
    bundle = discharge_bundle(NOW, facility="WESTHOSP")
    del bundle["entry"][0]["resource"]["sender"]
    assert event_of(bundle).facility == "WESTHOSP"
    del encounter(bundle)["serviceProvider"]
    with pytest.raises(FhirRefusal, match="facility code"):
        event_of(bundle)


def test_carebridge_example_fhir_discharge_prints_a_valid_r4_bundle_timed_from_now() -> None:
    before = datetime.now(UTC)
    result = CliRunner().invoke(
        app, ["example", "fhir-discharge", "--facility", "EASTHOSP", "--discharged", "-5h"]
    )
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    Bundle.model_validate(bundle)
    event = event_of(bundle)
    assert event.facility == "EASTHOSP" and event.discharged_at is not None
    assert before - timedelta(hours=5, seconds=5) <= event.discharged_at
    assert event.discharged_at <= datetime.now(UTC) - timedelta(hours=5) + timedelta(seconds=1)


def test_the_fhir_and_the_hl7_examples_of_one_visit_name_the_same_encounter_and_patient() -> None:
    def printed(kind: str) -> str:
        result = CliRunner().invoke(app, ["example", kind, "--visit", "F1001"])
        assert result.exit_code == 0, result.output
        return result.stdout

    fhir = event_of(json.loads(printed("fhir-discharge")))
    hl7 = mapping.to_event(er7.parse(printed("a03").encode()), NY)
    assert (fhir.facility, fhir.visit_number) == (hl7.facility, hl7.visit_number)
    assert fhir.patient_identifiers == hl7.patient_identifiers
