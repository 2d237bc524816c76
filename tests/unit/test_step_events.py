"""Steps declare the feed's messages that book or complete them (protocol YAML `events`,
schemas/feed.py): validated like the rest of a protocol, defaults by TCM element, `[]` for
none, and matched on message, trigger, place, class, document type and day."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from schemas.feed import VISIT_EVENTS, EventEffect, FeedFacts, StepEvent
from schemas.protocol_library import ProtocolError, load_library
from tests.workflow.support import LIBRARY, PROTOCOLS_DIR


def facts(**fields: object) -> FeedFacts:
    base: dict[str, object] = {"message": "ADT", "trigger": "A04", "day": 6}
    return FeedFacts.model_validate(base | fields)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"message": "SIU", "triggers": ["S99"], "effect": "books"}, "S99: not one of"),
        ({"message": "SIU", "triggers": ["S12"]}, "SIU messages book"),
        ({"message": "ADT", "triggers": ["A04"], "effect": "books"}, "SIU messages book"),
        ({"message": "ADT", "triggers": ["A04"], "document_types": ["DS"]}, "for MDM"),
        ({"message": "ADT", "triggers": ["A04"], "from_day": 5, "to_day": 2}, "before from_day"),
        ({"message": "ADT", "triggers": []}, "at least 1"),
    ],
)
def test_an_inconsistent_event_is_refused_with_the_reason(
    fields: dict[str, object], says: str
) -> None:
    with pytest.raises(ValidationError) as info:
        StepEvent.model_validate(fields)
    assert says in str(info.value)


def test_a_protocol_with_a_bad_event_is_refused_naming_the_file(tmp_path: Path) -> None:
    for source in PROTOCOLS_DIR.iterdir():
        (tmp_path / source.name).write_bytes(source.read_bytes())
    path = tmp_path / "discharge-home.v2.yaml"
    data = yaml.safe_load(path.read_text())
    visit = next(s for s in data["steps"] if s["id"] == "follow_up_visit")
    visit["events"] = [{"message": "ADT", "triggers": ["A03"]}]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProtocolError) as info:
        load_library(tmp_path)
    assert "discharge-home.v2.yaml" in str(info.value) and "A03" in str(info.value)


def test_the_shipped_visit_declares_the_defaults_and_the_handoff_takes_them() -> None:
    visit = LIBRARY.latest("discharge-home").step("follow_up_visit")
    assert visit.events is not None
    assert [e.message for e in visit.feed_events()] == ["SIU", "ADT"]
    handoff = LIBRARY.latest("facility-handoff").step("discharge_summary_handoff")
    assert handoff.events is None and handoff.feed_events()[0].message == "MDM"
    contact = LIBRARY.latest("discharge-home").step("interactive_contact")
    assert contact.feed_events() == ()
    off = visit.model_copy(update={"events": ()})
    assert off.feed_events() == ()  # `events: []` turns the defaults off


def test_matching_on_place_class_document_and_day() -> None:
    booking, arrival = VISIT_EVENTS
    assert arrival.matches(facts(at_practice_clinic=True))
    assert not arrival.matches(facts())  # not at a practice clinic
    assert not arrival.matches(facts(at_practice_clinic=True, trigger="A08"))
    assert booking.effect == EventEffect.BOOKS
    assert booking.matches(facts(message="SIU", trigger="S26"))
    cardiology = StepEvent(
        message="ADT", triggers=("A04",), locations=("CARDIO*",), patient_classes=("O",), to_day=14
    )
    assert cardiology.matches(facts(point_of_care="CARDIO2", patient_class="O"))
    assert not cardiology.matches(facts(point_of_care="ORTHO", patient_class="O"))
    assert not cardiology.matches(facts(point_of_care="CARDIO2", patient_class="E"))
    assert not cardiology.matches(facts(point_of_care="CARDIO2", patient_class="O", day=15))
    summary = StepEvent(message="MDM", triggers=("T02",), document_types=("DS",))
    assert summary.matches(facts(message="MDM", trigger="T02", document_type="DS"))
    assert not summary.matches(facts(message="MDM", trigger="T02", document_type="PN"))
