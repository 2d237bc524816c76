"""What the feed says without a person typing it (issue 20), taken from adt_event signals
the router marks `feed` and sends with their inbox id (ingest/feed_routing.py). Each step
declares the messages that book or complete it (protocol YAML `events`, schemas/feed.py;
unset: the defaults of its TCM element): SIU books, moves, cancels or reports a no-show of
the step's appointment; an arrival at a practice clinic (ADT^A04 / A01) completes the visit
on the arrival's time; the index stay's discharge summary (MDM^T02/T04) completes the
discharge-information step. Each change is on the timeline naming the message; what cannot
apply is recorded as not applied, with why. A supervisor may undo the feed's change of a
step (undo_feed) when the feed was wrong.

Behind FEED_PATCH: histories recorded before it never took these signals (the router sent
none), and replaying them never reaches the patched branches."""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.call import AppointmentStatus
    from schemas.feed import CLEARINGS, DOCUMENT_MESSAGES, EventEffect, FeedFacts
    from schemas.outcome import day_after_discharge
    from schemas.transition import (
        AdtSignal,
        Correction,
        FeedChange,
        StepState,
        StepStatus,
        TransitionStatus,
        UndoFeedRequest,
    )

from workflows.transition_updates import MAX_CORRECTIONS_PER_STEP, TransitionUpdates

FEED_PATCH = "feed-events-v1"
FEED_ACTOR = "feed"
CLEARED = {"S15": "cancelled", "S17": "deleted", "S26": "no-show"}


def _when(at: datetime) -> str:
    return at.isoformat(timespec="minutes")


class TransitionFeed(TransitionUpdates):
    """_feed_event: an SIU, a clinic arrival or a discharge summary applied to the steps
    that declare it; the undo_feed Update."""

    async def _feed_event(self, signal: AdtSignal, detail: str) -> None:
        if self._plan is None:  # the router sends only to planned transitions; to be sure
            await workflow.wait_condition(lambda: self._plan is not None)
        if signal.message_type == "SIU":
            self._scheduling(signal, detail)
        else:
            self._completion(signal, detail)

    def _ignored(self, detail: str, why: str, step_id: str | None = None) -> None:
        self._event("adt_ignored", step_id, actor=FEED_ACTOR, detail=f"{detail}: {why}")

    def _facts(self, signal: AdtSignal, at: datetime) -> FeedFacts:
        return FeedFacts(
            message=signal.message_type,
            trigger=signal.event_type,
            day=day_after_discharge(at, self._input.discharged_at, self._zone()),
            patient_class=signal.patient_class or "",
            point_of_care=(signal.location or "").split("^")[0],
            at_practice_clinic=signal.clinic is not None,
            document_type=signal.document_type or "",
        )

    def _declaring(self, facts: FeedFacts, effect: EventEffect) -> list[StepState]:
        """The steps whose declared events take this message, in protocol order."""
        return [
            self._steps[step_id]
            for step_id, rule in self._rules.items()
            if any(e.effect == effect and e.matches(facts) for e in rule.feed_events())
        ]

    def _in_period(self, at: datetime) -> bool:
        assert self._plan is not None
        return self._input.discharged_at <= at <= self._plan.period_ends_at

    def _scheduling(self, signal: AdtSignal, detail: str) -> None:
        appointment = signal.appointment
        at = appointment.at if appointment and appointment.at else signal.occurred_at
        what = f"SIU^{signal.event_type}"
        if at < self._input.discharged_at or not self._in_period(at):
            self._ignored(detail, "the appointment is outside the transition period")
            return
        declaring = self._declaring(self._facts(signal, at), EventEffect.BOOKS)
        if not declaring:
            self._ignored(detail, f"no step of this protocol takes {what}")
            return
        step = next((s for s in declaring if not s.is_terminal), None)
        if step is None:
            self._ignored(detail, f"{declaring[0].step_id} is already {declaring[0].status.value}")
            return
        booked_id = step.appointment_id
        same = appointment is None or not booked_id or appointment.id in ("", booked_id)
        if signal.event_type in CLEARINGS:
            if step.appointment_at is None or not same:
                self._ignored(detail, "no such appointment is booked", step.step_id)
                return
            step.appointment_at = step.appointment_status = step.appointment_id = None
            step.appointment_with = step.appointment_where = step.appointment_by = None
            step.appointment_late = False
            self._event(
                "appointment_cleared",
                step.step_id,
                actor=FEED_ACTOR,
                detail=f"{detail}: appointment {CLEARED[signal.event_type]}; {step.step_id} is "
                "open and escalates as usual",
            )
            return
        if appointment is None or appointment.at is None:
            self._ignored(detail, "the message has no appointment time", step.step_id)
            return
        if signal.event_type != "S12" and booked_id and not same:
            self._ignored(detail, "it changes another appointment than the one booked")
            return
        before = step.appointment_at
        step.appointment_at = appointment.at
        step.appointment_status = AppointmentStatus.BOOKED
        step.appointment_id = appointment.id or None
        step.appointment_with = appointment.provider or None
        step.appointment_where = appointment.location or None
        step.appointment_late = step.limit_at is not None and appointment.at > step.limit_at
        step.appointment_by = FEED_ACTOR
        moved = f"moved from {_when(before)} to" if before is not None else "booked for"
        text = f"{detail}: {moved} {_when(appointment.at)}"
        if appointment.provider:
            text += f" with {appointment.provider}"
        if appointment.location:
            text += f" at {appointment.location}"
        if step.appointment_late and step.limit_at is not None:
            text += (
                f"; after the step's limit {_when(step.limit_at)}: the TCM visit will be "
                "late, act now"
            )
        self._event("appointment", step.step_id, actor=FEED_ACTOR, detail=text)

    def _completion(self, signal: AdtSignal, detail: str) -> None:
        """An arrival or a document: every open step that declares it is completed."""
        at = signal.occurred_at
        document = signal.message_type in DOCUMENT_MESSAGES
        what = f"discharge summary received on {_when(at)}" if document else f"visit on {_when(at)}"
        if signal.clinic:
            what += f" at {signal.clinic}"
        if not self._in_period(at):
            self._ignored(detail, f"{what}: outside the transition period")
            return
        declaring = self._declaring(self._facts(signal, at), EventEffect.COMPLETES)
        open_steps = [s for s in declaring if not s.is_terminal]
        if not open_steps:
            why = (
                f"no open step of this protocol takes {signal.message_type}^{signal.event_type}"
                if not declaring
                else f"{declaring[0].step_id} is already {declaring[0].status.value}"
            )
            if document:  # still TRC evidence (the router recorded it)
                self._event("evidence", None, actor=FEED_ACTOR, detail=f"{detail}: {what}; {why}")
            else:
                self._ignored(detail, f"{what}: {why}")
            return
        if signal.confirm and not document:
            for step in open_steps:
                step.reported_at = at
                self._event(
                    "feed_reported",
                    step.step_id,
                    actor=FEED_ACTOR,
                    detail=f"{detail}: {what}: visit reported, confirm (complete it with the day)",
                )
            return
        for step in open_steps:
            self._complete(step, FEED_ACTOR, f"{what} ({signal.event_type})", detail, at=at)
            self._event(
                "feed_completed", step.step_id, actor=FEED_ACTOR, detail=f"{detail}: {what}"
            )

    @workflow.update
    async def undo_feed(self, request: UndoFeedRequest) -> StepState:
        await workflow.wait_condition(lambda: self._plan is not None)
        try:
            step = self._undoable(request)
        except ValueError as exc:
            raise ApplicationError(str(exc), type="StepNotActionable") from None
        if not self._feed_made(step, request.undo):
            return step.model_copy(deep=True)  # undone already: a repeat changes nothing
        if request.undo == FeedChange.COMPLETION:
            what = f"completion ({step.outcome}) undone: the step is open again"
            step.completed_at = step.completed_by = step.outcome = step.note = None
            step.status = StepStatus.PENDING
            self._refresh_pending()
            if self._owned_steps:
                self._ensure_step_task(step.step_id)
            else:
                self._tasks.append(asyncio.create_task(self._run_step(step.step_id)))
        else:
            at = _when(step.appointment_at) if step.appointment_at else ""
            what = f"appointment {at} undone"
            step.appointment_at = step.appointment_status = step.appointment_id = None
            step.appointment_with = step.appointment_where = step.appointment_by = None
            step.appointment_late = False
        # the reason is free text (it may name the patient): kept on the step, not the timeline
        step.corrections.append(
            Correction(at=workflow.now(), by=request.by, changes=what, reason=request.reason)
        )
        self._event("feed_undone", step.step_id, actor=request.by, detail=what)
        await self._publish()
        return step.model_copy(deep=True)

    @undo_feed.validator
    def validate_undo_feed(self, request: UndoFeedRequest) -> None:
        self._undoable(request)

    @staticmethod
    def _feed_made(step: StepState, change: FeedChange) -> bool:
        if change == FeedChange.COMPLETION:
            return step.completed_by == FEED_ACTOR
        return step.appointment_by == FEED_ACTOR

    def _undoable(self, request: UndoFeedRequest) -> StepState:
        """The step the feed changed this way, or undid it already (a repeat: no change)."""
        if self._status != TransitionStatus.ACTIVE:
            raise ValueError(f"The transition is {self._status.value}: nothing can change it now.")
        step = self._steps.get(request.step_id)
        if step is None:
            raise ValueError(
                f"There is no step {request.step_id!r}; the steps are {', '.join(self._steps)}."
            )
        if self._feed_made(step, request.undo):
            if len(step.corrections) >= MAX_CORRECTIONS_PER_STEP:
                raise ValueError(
                    f"Step {request.step_id!r} already has {MAX_CORRECTIONS_PER_STEP} corrections."
                )
            return step
        last = step.corrections[-1] if step.corrections else None
        if last is not None and last.changes.startswith(request.undo.value):
            return step
        raise ValueError(
            f"The feed made no {request.undo.value} on step {request.step_id!r} to undo."
        )
