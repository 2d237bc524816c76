"""What the feed says without a person typing it (issue 20), taken from adt_event signals
the router sends with their inbox id (ingest/feed_routing.py): SIU books, moves, cancels or
reports a no-show of the follow-up visit's appointment; an arrival at a practice clinic
(ADT^A04 / A01) completes the visit on the arrival's time; the index stay's discharge
summary (MDM^T02/T04) completes the protocol's discharge-information step. Each change is on
the timeline naming the message; what it cannot apply is recorded as not applied, with why.

Behind FEED_PATCH: histories recorded before it never took these signals (the router sent
none), and replaying them never reaches the patched branches."""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.call import AppointmentStatus
    from schemas.feed import BOOKINGS, CLEARINGS, DOCUMENT_EVENTS
    from schemas.protocol import TcmElement
    from schemas.transition import (
        AdtSignal,
        StepState,
        StepStatus,
        TransitionStatus,
        UndoFeedRequest,
    )

from workflows.transition_updates import TransitionUpdates

FEED_PATCH = "feed-events-v1"
FEED_ACTOR = "feed"
CLEARED = {"S15": "cancelled", "S17": "deleted", "S26": "no-show"}


def _when(at: datetime) -> str:
    return at.isoformat(timespec="minutes")


class TransitionFeed(TransitionUpdates):
    """_feed_event: an SIU, a clinic arrival or a discharge summary applied to the steps."""

    @staticmethod
    def is_feed_event(signal: AdtSignal) -> bool:
        kind = signal.event_type
        return (
            kind in BOOKINGS
            or kind in CLEARINGS
            or kind in DOCUMENT_EVENTS
            or (signal.clinic is not None and kind in ("A01", "A04"))
        )

    async def _feed_event(self, signal: AdtSignal, detail: str) -> None:
        await workflow.wait_condition(lambda: self._plan is not None)
        kind = signal.event_type
        if kind in BOOKINGS or kind in CLEARINGS:
            self._scheduling(signal, detail)
        elif kind in DOCUMENT_EVENTS:
            self._discharge_summary(signal, detail)
        else:
            self._clinic_arrival(signal, detail)

    def _ignored(self, detail: str, why: str, step_id: str | None = None) -> None:
        self._event("adt_ignored", step_id, actor=FEED_ACTOR, detail=f"{detail}: {why}")

    def _open_visit(self, detail: str) -> StepState | None:
        visit = self._element_step(TcmElement.FACE_TO_FACE_VISIT)
        if visit is None:
            self._ignored(detail, "this protocol has no follow-up visit")
            return None
        if visit.is_terminal:
            self._ignored(detail, f"the follow-up visit is already {visit.status.value}")
            return None
        return visit

    def _in_period(self, at: datetime) -> bool:
        assert self._plan is not None
        return self._input.discharged_at <= at <= self._plan.period_ends_at

    def _scheduling(self, signal: AdtSignal, detail: str) -> None:
        visit = self._open_visit(detail)
        if visit is None:
            return
        appointment = signal.appointment
        booked_id = visit.appointment_id
        same = appointment is None or not booked_id or appointment.id in ("", booked_id)
        if signal.event_type in CLEARINGS:
            if visit.appointment_at is None or not same:
                self._ignored(detail, "no such appointment is booked", visit.step_id)
                return
            what = CLEARED[signal.event_type]
            visit.appointment_at = visit.appointment_status = visit.appointment_id = None
            visit.appointment_with = visit.appointment_where = None
            visit.appointment_late = False
            visit.appointment_by = None
            self._event(
                "appointment_cleared",
                visit.step_id,
                actor=FEED_ACTOR,
                detail=f"{detail}: appointment {what}; the follow-up visit is open and "
                "escalates as usual",
            )
            return
        if appointment is None or appointment.at is None:
            self._ignored(detail, "the message has no appointment time", visit.step_id)
            return
        if not self._in_period(appointment.at):
            self._ignored(detail, "the appointment is outside the transition period")
            return
        if signal.event_type != "S12" and booked_id and not same:
            self._ignored(detail, "it changes another appointment than the one booked")
            return
        before = visit.appointment_at
        visit.appointment_at = appointment.at
        visit.appointment_status = AppointmentStatus.BOOKED
        visit.appointment_id = appointment.id or None
        visit.appointment_with = appointment.provider or None
        visit.appointment_where = appointment.location or None
        visit.appointment_late = visit.limit_at is not None and appointment.at > visit.limit_at
        visit.appointment_by = FEED_ACTOR
        moved = f"moved from {_when(before)} to" if before is not None else "booked for"
        text = f"{detail}: {moved} {_when(appointment.at)}"
        if appointment.provider:
            text += f" with {appointment.provider}"
        if appointment.location:
            text += f" at {appointment.location}"
        if visit.appointment_late and visit.limit_at is not None:
            text += (
                f"; after the visit's limit {_when(visit.limit_at)}: the TCM visit will be "
                "late, act now"
            )
        self._event("appointment", visit.step_id, actor=FEED_ACTOR, detail=text)

    def _clinic_arrival(self, signal: AdtSignal, detail: str) -> None:
        visit = self._open_visit(detail)
        if visit is None:
            return
        if not self._in_period(signal.occurred_at):
            self._ignored(detail, "the arrival is outside the transition period", visit.step_id)
            return
        outcome = f"visit at {signal.clinic} reported by {signal.event_type}"
        self._complete(visit, FEED_ACTOR, outcome, detail, at=signal.occurred_at)
        self._event(
            "feed_completed",
            visit.step_id,
            actor=FEED_ACTOR,
            detail=f"{detail}: face-to-face visit on {_when(signal.occurred_at)} at "
            f"{signal.clinic}",
        )

    def _discharge_summary(self, signal: AdtSignal, detail: str) -> None:
        step = self._element_step(TcmElement.DISCHARGE_INFORMATION)
        if step is None or step.is_terminal:
            why = "no open discharge-information step" if step is None else "already done"
            self._event(
                "evidence",
                step.step_id if step else None,
                actor=FEED_ACTOR,
                detail=f"{detail}: discharge summary received on {_when(signal.occurred_at)} "
                f"(TRC discharge information; {why})",
            )
            return
        self._complete(
            step, FEED_ACTOR, "discharge summary received", detail, at=signal.occurred_at
        )
        self._event(
            "feed_completed",
            step.step_id,
            actor=FEED_ACTOR,
            detail=f"{detail}: discharge summary received on {_when(signal.occurred_at)}",
        )

    @workflow.update
    async def undo_feed(self, request: UndoFeedRequest) -> StepState:
        await workflow.wait_condition(lambda: self._plan is not None)
        try:
            step = self._undoable(request)
        except ValueError as exc:
            raise ApplicationError(str(exc), type="StepNotActionable") from None
        if step.completed_by == FEED_ACTOR:
            what = f"completion ({step.outcome}) undone: the step is open again"
            step.completed_at = step.completed_by = step.outcome = step.note = None
            step.status = StepStatus.PENDING
            self._refresh_pending()
            if self._owned_steps:
                self._ensure_step_task(step.step_id)
            else:
                self._tasks.append(asyncio.create_task(self._run_step(step.step_id)))
        else:
            at = step.appointment_at.isoformat(timespec="minutes") if step.appointment_at else ""
            what = f"appointment {at} undone"
            step.appointment_at = step.appointment_status = step.appointment_id = None
            step.appointment_with = step.appointment_where = step.appointment_by = None
            step.appointment_late = False
        self._event(
            "feed_undone", step.step_id, actor=request.by, detail=f"{what}; {request.reason}"
        )
        await self._publish()
        return step.model_copy(deep=True)

    @undo_feed.validator
    def validate_undo_feed(self, request: UndoFeedRequest) -> None:
        self._undoable(request)

    def _undoable(self, request: UndoFeedRequest) -> StepState:
        if self._status != TransitionStatus.ACTIVE:
            raise ValueError(f"The transition is {self._status.value}: nothing can change it now.")
        step = self._steps.get(request.step_id)
        if step is None:
            raise ValueError(
                f"There is no step {request.step_id!r}; the steps are {', '.join(self._steps)}."
            )
        if step.completed_by != FEED_ACTOR and step.appointment_by != FEED_ACTOR:
            raise ValueError(
                f"The feed has changed nothing on step {request.step_id!r} that could be undone."
            )
        return step
