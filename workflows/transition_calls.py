"""The outreach call's outcome as one Update, mapped onto the steps it informs: the call is an
attempt on its call step, and reaching the patient or caregiver completes that step at the
time of the call; medication problems found are evidence for the medication reconciliation
(whose owner, the pharmacist, reconciles: a phone report is not a reconciliation); a booked
or confirmed appointment goes on the follow-up visit; social needs found are evidence for the
screening (completed by recording its answers); red-flag symptoms page a clinician now.

One Update rather than the attempt, complete and note Updates composed by the client: the
call applies whole or not at all (a refused appointment does not leave the contact
completed), under one validator and one idempotency key."""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.call import (
        RED_FLAG_CHANNEL,
        RED_FLAG_ROLE,
        CallRecord,
        Evidence,
        Reached,
        is_call_step,
    )
    from schemas.protocol import StepKind, TcmElement
    from schemas.transition import (
        Attempt,
        AttemptResult,
        CallOutcomeRequest,
        EscalationNotice,
        StepState,
    )

from workflows.transition_updates import MAX_ATTEMPTS_PER_STEP, TransitionUpdates

MAX_CALLS = 200  # with the attempts' cap per step: state and history stay bounded


def attempt_result(request: CallOutcomeRequest) -> AttemptResult:
    if request.reached != Reached.NOBODY:
        return AttemptResult.REACHED
    if request.left_message:
        return AttemptResult.LEFT_MESSAGE
    return AttemptResult.WRONG_NUMBER if request.wrong_number else AttemptResult.NO_ANSWER


class TransitionCalls(TransitionUpdates):
    """The record_call Update and its validator, and the red-flag notice."""

    def _call_step(self, request: CallOutcomeRequest) -> StepState:
        """The validator's checks, also run again by the handler."""
        step = self._actionable(request.step_id)
        if not is_call_step(step.kind, step.owner_role):
            calls = [s.step_id for s in self._steps.values() if is_call_step(s.kind, s.owner_role)]
            raise ValueError(
                f"step {request.step_id!r} is not a call; calls are recorded on "
                + (", ".join(calls) or "no step of this protocol")
            )
        if len(step.attempts) >= MAX_ATTEMPTS_PER_STEP:
            raise ValueError(
                f"step {request.step_id!r} already has {MAX_ATTEMPTS_PER_STEP} attempts"
            )
        if len(self._calls) >= MAX_CALLS:
            raise ValueError(f"this transition already has {MAX_CALLS} calls")
        self._check_when(request.at, "the call")
        if request.appointment_at is not None:
            visit = self._element_step(TcmElement.FACE_TO_FACE_VISIT)
            if visit is None:
                raise ValueError("this transition's protocol has no follow-up visit to book")
            if visit.is_terminal:
                raise ValueError(
                    f"the follow-up visit is already {visit.status.value}: leave the "
                    "appointment out"
                )
            if request.appointment_at < self._input.discharged_at:
                raise ValueError("the appointment cannot be before the discharge")
        return step

    @workflow.update
    async def record_call(self, request: CallOutcomeRequest) -> CallRecord:
        await workflow.wait_condition(lambda: self._plan is not None)
        try:
            step = self._call_step(request)
        except ValueError as exc:
            raise ApplicationError(str(exc), type="StepNotActionable") from None
        at = request.at or workflow.now()
        record = CallRecord(at=at, by=request.by, step_id=step.step_id, **request.findings())
        self._calls.append(record)
        result = attempt_result(request)
        step.attempts.append(Attempt(at=at, by=request.by, result=result, note=request.note))
        self._event("call", step.step_id, actor=request.by, detail=record.summary)
        if request.reached != Reached.NOBODY:
            self._complete(step, request.by, f"reached {request.reached.value}", None, at=at)
        if request.medication_problems is not None:
            found = "medication problems found" if request.medication_problems else "no problems"
            self._add_evidence(
                self._element_step(TcmElement.MEDICATION_RECONCILIATION),
                Evidence(at=at, by=request.by, finding=found, note=request.medication_notes),
            )
        if request.appointment_at is not None:
            visit = self._element_step(TcmElement.FACE_TO_FACE_VISIT)
            assert visit is not None  # checked above
            visit.appointment_at = request.appointment_at
            visit.appointment_status = request.appointment_status
            self._event(
                "appointment",
                visit.step_id,
                actor=request.by,
                detail=f"{request.appointment_status.value} for "
                f"{request.appointment_at.isoformat()}",
            )
        if request.social_needs is not None:
            screening = next(
                (s for s in self._steps.values() if s.kind == StepKind.SCREENING), None
            )
            found = "social needs found" if request.social_needs else "no social needs"
            self._add_evidence(screening, Evidence(at=at, by=request.by, finding=found))
        if request.red_flags:
            self._raise_red_flags(step, record)
        await self._publish()
        return record

    @record_call.validator
    def validate_record_call(self, request: CallOutcomeRequest) -> None:
        self._call_step(request)

    def _add_evidence(self, step: StepState | None, evidence: Evidence) -> None:
        """Keep what the call found on the step it informs, while that step is open."""
        if step is None or step.is_terminal:
            return
        step.evidence.append(evidence)
        self._event("evidence", step.step_id, actor=evidence.by, detail=f"call: {evidence.finding}")

    def _raise_red_flags(self, step: StepState, record: CallRecord) -> None:
        """Page a clinician now: the notice goes out in its own task, so the call is answered
        at once; the transition does not close before it is delivered or given up."""
        notice = EscalationNotice(
            transition_id=self._input.transition_id,
            step_id=step.step_id,
            level=0,
            role=RED_FLAG_ROLE,
            channel=RED_FLAG_CHANNEL,
            transport=self._transport(RED_FLAG_CHANNEL),
            due_at=record.at,
            scheduled_at=workflow.now(),
            red_flag=True,
        )
        self._event(
            "red_flag",
            step.step_id,
            actor=record.by,
            detail=f"{len(record.red_flags)} red-flag symptom(s): {RED_FLAG_ROLE} notified now "
            f"via {RED_FLAG_CHANNEL}",
        )
        self._tasks.append(asyncio.create_task(self._send_red_flag(notice)))

    async def _send_red_flag(self, notice: EscalationNotice) -> None:
        if await self._deliver(notice, f"red-flag notice via {notice.channel}") is not None:
            await self._publish()
