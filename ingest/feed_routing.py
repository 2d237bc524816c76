"""What the feed's other messages do (issue 20): an SIU reaches the patient's open transition
(by patient key, not visit: an appointment is a new encounter) whose discharge came before
the appointment; an arrival (ADT^A04 / A01) at a practice clinic the site lists is the
follow-up visit; an MDM discharge summary of the index stay (by its visit) is TRC evidence
and closes a discharge-summary step. The workflow decides what each does to its steps
(workflows/transition_feed.py); every one is delivered with its inbox id for the timeline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from schemas.adt import AdtEvent
from schemas.feed import FeedConfig
from schemas.transition import AdtSignal
from store import encounters, trc_evidence

Send = Callable[[str, AdtSignal], Awaitable[bool]]


@dataclass(frozen=True)
class FeedRouted:
    status: str
    text: str
    transition_id: str | None = None


async def _first_reached(
    pool: asyncpg.Pool, send: Send, patient: str, at: datetime, signal: AdtSignal, days: int
) -> str | None:
    """The newest of the patient's transitions discharged before `at` that takes the signal."""
    for transition in await encounters.discharges_of_patient(
        pool, patient, before=at, window_days=days
    ):
        if await send(transition, signal):
            return transition
    return None


async def scheduling(
    pool: asyncpg.Pool,
    send: Send,
    event: AdtEvent,
    patient: str,
    signal: AdtSignal,
    window_days: int,
) -> FeedRouted:
    what = f"SIU^{event.event_type}"
    appointment = event.appointment
    at = appointment.at if appointment and appointment.at else signal.occurred_at
    return await _to_the_patients_transition(pool, send, patient, at, signal, window_days, what)


async def clinic_visit(
    pool: asyncpg.Pool,
    send: Send,
    event: AdtEvent,
    patient: str,
    signal: AdtSignal,
    window_days: int,
) -> FeedRouted:
    where = event.location.split("^")[0]
    what = f"{event.event_type} at {'practice clinic ' if signal.clinic else ''}{where}"
    return await _to_the_patients_transition(
        pool, send, patient, signal.occurred_at, signal, window_days, what
    )


async def _to_the_patients_transition(
    pool: asyncpg.Pool,
    send: Send,
    patient: str,
    at: datetime,
    signal: AdtSignal,
    window_days: int,
    what: str,
) -> FeedRouted:
    """Deliver a feed event to the patient's open transition at `at`, or say why not."""
    if not patient:
        return FeedRouted("ignored", f"{what}: no patient identifier (PID-3)")
    reached = await _first_reached(pool, send, patient, at, signal, window_days)
    if reached is None:
        return FeedRouted(
            "ignored", f"{what} recorded; the patient has no open transition before it"
        )
    return FeedRouted("processed", f"{what} delivered to the patient's transition", reached)


async def document(
    pool: asyncpg.Pool,
    send: Send,
    event: AdtEvent,
    transition: str,
    signal: AdtSignal,
    feed: FeedConfig,
    inbox_id: int | None,
    *,
    received_at: datetime | None = None,
) -> FeedRouted:
    """The index stay's discharge information: evidence for TRC on the document's date
    (kept even when the transition has closed), and a signal for its timeline and its
    discharge-summary step."""
    message = event.header.message_type
    what = f"{message}^{event.event_type}"
    doc = event.document
    kind = doc.type if doc else ""
    listed, setting = (
        (feed.discharge_documents, "discharge_documents")
        if message == "MDM"
        else (feed.discharge_result_codes, "discharge_result_codes")
    )
    if kind not in listed:
        return FeedRouted(
            "ignored",
            f"{what} recorded; document type {kind or '(empty)'} is not discharge information "
            f"(site.yaml feed.{setting}: {', '.join(listed) or 'none'})",
        )
    if not event.visit_number:
        return FeedRouted("ignored", f"{what} recorded; no visit number, so no index stay")
    known = await pool.fetchval("SELECT 1 FROM transitions WHERE transition_id = $1", transition)
    if known is None:
        return FeedRouted("ignored", f"{what} recorded; no transition for this visit")
    await trc_evidence.record(
        pool,
        trc_evidence.Evidence(
            transition_id=transition,
            component=trc_evidence.Component.DISCHARGE_INFORMATION,
            source=trc_evidence.Source.DOCUMENT,
            at=signal.occurred_at,
            inbox_id=inbox_id,
        ),
        recorded_at=received_at,
    )
    delivered = await send(transition, signal)
    text = f"{what}: discharge information of the stay recorded for TRC"
    return FeedRouted("processed", text if delivered else f"{text} (transition closed)", transition)
