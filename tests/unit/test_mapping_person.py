"""The person fields of an ADT (PID-15, NK1, PD1-4, ROL) and the profile the router builds."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from ingest import er7, mapping
from ingest.routing import AdtRouter, person_profile
from schemas.adt import AdtEvent, NextOfKin
from schemas.person import Caregiver
from schemas.protocol_library import load_library
from tests.helpers import a03

NY = ZoneInfo("America/New_York")
PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"
PID = (
    "PID|1||100234^^^{facility}^MR||DOE^JANE^Q||19480312|F|||1 MAIN ST^^BOSTON^MA||"
    "^PRN^PH^^1^617^5550100|(617)555-0199|{language}"
)
NK1_SPOUSE = "NK1|1|DOE^JOHN|SPO^Spouse|1 MAIN ST^^BOSTON^MA|(617)555-0142~(617)555-0143"
NK1_DAUGHTER = "NK1|2|ROE^MARY^^^^^L|DTR^Daughter||^PRN^PH^^1^508^5550111"
NK1_NAMELESS = "NK1|3||EMC^Emergency contact"
PD1 = "PD1|||GENERAL PRACTICE|1234567890^WELBY^MARCUS^^^^^^NPI~D55^CASEY"
ROL_PCP = "ROL|1|AD|PP^Primary Care Provider^HL70443|D77^KILDARE^JAMES"
ROL_ATTENDING = "ROL|2|AD|AT^Attending^HL70443|D99^HOUSE^GREGORY"
ROL_PCP_AGAIN = "ROL|3|AD|PCP|D55^CASEY"


def discharge(*extra: str, language: str = "SPA^Spanish^ISO6392") -> bytes:
    """a03() with a full PID (phones, PID-15) and extra segments appended."""
    lines = a03(facility="GENHOSP", visit="V900").decode().rstrip("\r").split("\r")
    lines = [
        PID.format(facility="GENHOSP", language=language) if line.startswith("PID") else line
        for line in lines
    ]
    return ("\r".join([*lines, *extra]) + "\r").encode()


def event_of(raw: bytes) -> AdtEvent:
    return mapping.to_event(er7.parse(raw), NY)


def test_language_is_the_pid15_identifier() -> None:
    assert event_of(discharge()).language == "SPA"


def test_language_falls_back_to_the_pid15_text_without_an_identifier() -> None:
    assert event_of(discharge(language="^Spanish")).language == "Spanish"


def test_absent_person_segments_and_fields_map_to_empty_values() -> None:
    event = event_of(a03())
    assert event.language == ""
    assert event.next_of_kin == ()
    assert event.pcp_ids == ()


def test_each_nk1_gives_name_relationship_and_first_phone() -> None:
    event = event_of(discharge(NK1_SPOUSE, NK1_DAUGHTER, NK1_NAMELESS))
    assert event.next_of_kin == (
        NextOfKin(name="JOHN DOE", relationship="SPO", phone="(617)555-0142"),
        NextOfKin(name="MARY ROE", relationship="DTR", phone="5085550111"),
        NextOfKin(name="", relationship="EMC", phone=""),
    )


def test_pcp_ids_come_from_pd1_4_and_pcp_roles_only_once_each() -> None:
    event = event_of(discharge(PD1, ROL_PCP, ROL_ATTENDING, ROL_PCP_AGAIN))
    assert event.pcp_ids == ("1234567890", "D55", "D77")


def test_bare_and_empty_person_segments_are_tolerated() -> None:
    event = event_of(discharge("NK1", "NK1|1", "PD1", "PD1|||", "ROL", "ROL|1|AD|PP", language=""))
    assert event.language == ""
    assert event.next_of_kin == ()
    assert event.pcp_ids == ()


def test_profile_carries_language_numbers_and_named_caregivers_without_consent() -> None:
    profile = person_profile(event_of(discharge(NK1_SPOUSE, NK1_NAMELESS)))
    assert profile.language == "SPA"
    assert profile.phones == ("6175550100", "(617)555-0199")
    assert profile.caregivers == (
        Caregiver(name="JOHN DOE", relationship="SPO", phone="(617)555-0142"),
    )
    assert profile.caregivers[0].consent_to_contact is False
    assert profile.contactable_caregivers == ()


def test_a_phone_too_long_for_the_profile_is_dropped_not_cut() -> None:
    long_number = "1" * 30
    event = event_of(discharge(f"NK1|1|DOE^JOHN|SPO|addr|{long_number}"))
    assert person_profile(event).caregivers == (Caregiver(name="JOHN DOE", relationship="SPO"),)


async def test_transition_input_built_by_the_router_carries_the_profile() -> None:
    router = AdtRouter(
        None, None, library=load_library(PROTOCOLS), key_secret="test", task_queue="tq"
    )
    event = event_of(discharge(NK1_SPOUSE, NK1_DAUGHTER))
    protocol = router.select(event).protocol
    assert protocol is not None
    workflow_input = await router.transition_input(event, protocol)
    assert workflow_input.profile.language == "SPA"
    assert [c.name for c in workflow_input.profile.caregivers] == ["JOHN DOE", "MARY ROE"]
    assert workflow_input.profile.phones == event.contact_numbers
