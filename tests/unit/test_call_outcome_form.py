"""The call outcome form's own rules (what a call that reached nobody can say), its summary in
controlled words, and the timeline filled in from the state (a note's text, a call's
findings) where the plain-text projection keeps controlled words only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas.call import CallFindings, CallRecord, Reached, RedFlag
from schemas.timeline import annotated
from schemas.transition import Note, TransitionState, TransitionStatus

NOW = datetime.now(UTC)


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        (
            {"reached": "nobody", "medication_problems": False, "red_flags": ["fever"]},
            "a call that reached nobody cannot record medication problems or red-flag symptoms",
        ),
        (
            {"reached": "nobody", "left_message": True, "wrong_number": True},
            "a call either left a message or reached a wrong number",
        ),
        (
            {"reached": "caregiver", "left_message": True},
            "a call that reached the caregiver neither left a message nor reached a wrong number",
        ),
        (
            {"reached": "patient", "medication_notes": "ran out"},
            "medication notes need the answer whether problems were found",
        ),
    ],
)
def test_a_call_says_only_what_it_could_have_learned(
    fields: dict[str, object], refusal: str
) -> None:
    with pytest.raises(ValidationError, match=refusal):
        CallFindings.model_validate(fields)


def test_the_summary_is_controlled_words_without_symptoms_or_notes() -> None:
    call = CallFindings(
        reached=Reached.PATIENT,
        medication_problems=False,
        medication_notes="all taken",
        appointment_at=NOW + timedelta(days=2),
        red_flags=(RedFlag.FALL, RedFlag.FALL, RedFlag.FEVER),
        social_needs=True,
        note="lives alone",
    )
    assert call.red_flags == (RedFlag.FALL, RedFlag.FEVER)  # each once
    assert call.summary == (
        "reached patient; medicines reviewed; appointment booked; 2 red flag(s): clinician "
        "notified; social needs found"
    )
    assert CallFindings(reached=Reached.NOBODY, wrong_number=True).summary == "wrong number"


def test_the_timeline_shows_notes_and_calls_from_the_state_in_order() -> None:
    def event(seq: int, kind: str, step: str | None = None) -> dict[str, object]:
        return {"seq": seq, "at": NOW, "kind": kind, "step_id": step, "actor": "rn.a", "detail": ""}

    calls = [
        CallRecord(at=NOW, by="rn.a", step_id="interactive_contact", reached=Reached.NOBODY),
        CallRecord(
            at=NOW,
            by="rn.a",
            step_id="interactive_contact",
            reached=Reached.PATIENT,
            red_flags=(RedFlag.CHEST_PAIN,),
            note="called back",
        ),
    ]
    state = TransitionState(
        transition_id="t",
        facility="F",
        status=TransitionStatus.ACTIVE,
        protocol_id="discharge-home",
        protocol_version=2,
        discharged_at=NOW,
        notes=[Note(at=NOW, by="rn.a", text="first"), Note(at=NOW, by="rn.a", text="second")],
        calls=calls,
    )
    events = [
        event(1, "note"),
        event(2, "call", "interactive_contact"),
        event(3, "note"),
        event(4, "call", "interactive_contact"),
        event(5, "escalated", "interactive_contact"),
    ]
    details = [e["detail"] for e in annotated(events, state)]
    assert details == [
        "first",
        "no answer",
        "second",
        "reached patient; 1 red flag(s): clinician notified; red flags: Chest pain or pressure; "
        "note: called back",
        "",
    ]
    assert annotated(events, None) == events  # without the state, the projection's words
