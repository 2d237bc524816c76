"""PV1-37 (discharged to location) is mapped, and reaches the person profile only for a
discharge to a facility (PV1-36 02-05, 61-66, 70, 82-95): there the patient is reached,
not at home. A home discharge's PV1-37 ("HOME") is not a place to reach them."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from ingest import er7, mapping
from ingest.routing import person_profile
from schemas.adt import AdtEvent
from tests.helpers import a03, with_field

NY = ZoneInfo("America/New_York")


def event(disposition: str, discharged_to: str) -> AdtEvent:
    raw = with_field(a03(disposition=disposition), "PV1", 37, discharged_to)
    return mapping.to_event(er7.parse(raw), NY)


def test_pv1_37_is_mapped_to_discharged_to() -> None:
    assert event("03", "SUNNY ACRES SNF^20260101").discharged_to == "SUNNY ACRES SNF"
    assert event("03", "").discharged_to == ""


def test_a_snf_discharge_puts_the_receiving_facility_on_the_profile() -> None:
    assert person_profile(event("03", "SUNNY ACRES SNF")).discharged_to == "SUNNY ACRES SNF"
    assert person_profile(event("62", "BAYSIDE REHAB")).discharged_to == "BAYSIDE REHAB"


def test_a_home_discharge_keeps_no_discharged_to_location() -> None:
    assert person_profile(event("01", "HOME")).discharged_to == ""
    assert person_profile(event("06", "HOME")).discharged_to == ""
