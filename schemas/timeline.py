"""The timeline as people read it: the projection's rows (plain text at rest, so controlled
words only) completed with what only the workflow's encrypted state holds: a note's text, a
call's findings, a completion's outcome and a cancel's reason as staff wrote them. For the
transition page and `carebridge show`; both hold the live state already."""

from __future__ import annotations

from typing import Any

from schemas.call import RED_FLAG_TITLES, CallRecord
from schemas.transition import TransitionState


def call_details(call: CallRecord) -> str:
    """A call in words, with what the care manager wrote and the red flags by name (PHI)."""
    parts = [call.summary]
    if call.appointment_at is not None:
        parts.append(f"appointment {call.appointment_at.isoformat(timespec='minutes')}")
    if call.red_flags:
        parts.append("red flags: " + ", ".join(RED_FLAG_TITLES[f] for f in call.red_flags))
    if call.medication_notes:
        parts.append(f"medicines: {call.medication_notes}")
    if call.note:
        parts.append(f"note: {call.note}")
    return "; ".join(parts)


def annotated(events: list[dict[str, Any]], state: TransitionState | None) -> list[dict[str, Any]]:
    """The events with their `detail` filled in from the state where the projection could
    not keep it. The n-th note event is the n-th note, the n-th call event of a step its
    n-th call (both are appended in the order they happen, and capped alike)."""
    if state is None:
        return events
    notes = iter(state.notes)
    calls: dict[str, list[CallRecord]] = {}
    for call in state.calls:
        calls.setdefault(call.step_id, []).append(call)
    steps = {step.step_id: step for step in state.steps}
    shown = []
    for event in events:
        detail = event["detail"]
        step = steps.get(event["step_id"] or "")
        if event["kind"] == "note":
            note = next(notes, None)
            detail = note.text if note is not None else detail
        elif event["kind"] == "call" and calls.get(event["step_id"] or ""):
            detail = call_details(calls[event["step_id"]].pop(0))
        elif event["kind"] == "completed" and step is not None and step.outcome:
            detail = step.outcome + (f" ({step.note})" if step.note else "")
        elif event["kind"] == "cancelled" and step is not None and step.cancel_reason:
            detail = step.cancel_reason
        shown.append({**event, "detail": detail})
    return shown
