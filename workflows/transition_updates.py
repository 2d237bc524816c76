"""Operator actions as validated Temporal Updates. A validator refuses what cannot apply
(nothing reaches history then); the handler waits for the plan, checks again (another
Update may have won meanwhile), changes the step, and publishes before it answers."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.person import PersonProfile
    from schemas.protocol import StepKind, TcmElement
    from schemas.social_needs import Referral, Screening
    from schemas.transition import (
        Attempt,
        AttemptRequest,
        AttemptResult,
        CancelStepRequest,
        CompleteStepRequest,
        Correction,
        CorrectionRequest,
        Note,
        NoteRequest,
        ProfileRequest,
        ReassignRequest,
        ReferralRequest,
        ScheduleStepRequest,
        ScreeningRequest,
        SnoozeRequest,
        StepState,
        StepStatus,
        TransitionStatus,
    )

from workflows.transition_steps import TransitionSteps

MAX_NOTES = 200  # keeps history and state bounded over a 30-day transition
MAX_ATTEMPTS_PER_STEP = 20
MAX_CORRECTIONS_PER_STEP = 20
# A time "now" from a browser or a laptop may run a little ahead of the workflow's clock.
CLOCK_SKEW = timedelta(minutes=2)


class TransitionUpdates(TransitionSteps):
    """complete_step, correct_step, update_profile, record_screening, close_referral,
    record_attempt, reassign, snooze, cancel_step and add_note, each with its validator."""

    def _actionable(self, step_id: str, *, allow_pending: bool = False) -> StepState:
        """The shared validator: the transition is active and the step can be acted on."""
        if self._status != TransitionStatus.ACTIVE:
            raise ValueError(f"the transition is {self._status.value}")
        step = self._steps.get(step_id)
        if step is None:
            known = ", ".join(self._steps)
            raise ValueError(f"unknown step {step_id!r}; steps are: {known}")
        if step.is_terminal:
            raise ValueError(f"step {step_id!r} is already {step.status.value}")
        waiting = sorted(
            p for p in self._prerequisites(step_id) if self._steps[p].status != StepStatus.COMPLETED
        )
        if waiting and not allow_pending:
            raise ValueError(f"step {step_id!r} is waiting for {', '.join(waiting)}")
        return step

    async def _ready(self, step_id: str, *, allow_pending: bool = False) -> StepState:
        """In a handler: wait for the plan, then re-check (another update may have won)."""
        await workflow.wait_condition(lambda: self._plan is not None)
        try:
            return self._actionable(step_id, allow_pending=allow_pending)
        except ValueError as exc:
            raise ApplicationError(str(exc), type="StepNotActionable") from None

    def _zone(self) -> ZoneInfo:
        """The facility's zone: built in schemas (passed through), not in the sandbox."""
        return self._input.calendar.zone()

    def _local_day(self, instant: datetime) -> date:
        return instant.astimezone(self._zone()).date()

    def _check_when(self, at: datetime | None, what: str) -> None:
        """An instant something happened: not before the discharge, not in the future."""
        if at is None:
            return
        if at < self._input.discharged_at:
            raise ValueError(f"{what} cannot be before the discharge")
        if at > workflow.now() + CLOCK_SKEW:
            raise ValueError(f"{what} cannot be in the future")

    def _check_day(self, day: date | None, what: str) -> None:
        """A day something was done (the facility's calendar): from the discharge day to
        today."""
        if day is None:
            return
        discharged = self._local_day(self._input.discharged_at)
        if day < discharged:
            raise ValueError(f"{what} cannot be before the discharge on {discharged.isoformat()}")
        if day > self._local_day(workflow.now()):
            raise ValueError(f"{what} cannot be in the future")

    def _instant_on(self, day: date) -> datetime:
        """The instant recorded for a day: now when it is today, else that day's noon (never
        before the discharge). Only the local day counts (TCM's visit day, HEDIS windows)."""
        if day == self._local_day(workflow.now()):
            return workflow.now()
        return max(datetime.combine(day, time(12), tzinfo=self._zone()), self._input.discharged_at)

    def _element_step(self, element: TcmElement) -> StepState | None:
        """The protocol's step that proves a TCM element (the visit, the reconciliation)."""
        for step_id, rule in self._rules.items():
            if rule.tcm_element == element:
                return self._steps[step_id]
        return None

    @workflow.update
    async def complete_step(self, request: CompleteStepRequest) -> StepState:
        step = await self._ready(request.step_id)
        at = self._instant_on(request.occurred_on) if request.occurred_on else None
        self._complete(step, request.by, request.outcome, request.note, at=at)
        step.complexity = request.complexity
        await self._publish()
        return step.model_copy(deep=True)

    @complete_step.validator
    def validate_complete_step(self, request: CompleteStepRequest) -> None:
        step = self._actionable(request.step_id)
        if step.kind == StepKind.SCREENING:
            raise ValueError(f"step {request.step_id!r} is completed by recording the screening")
        if step.kind == StepKind.REFERRAL:
            raise ValueError(f"step {request.step_id!r} is closed with a resource and an outcome")
        self._check_day(request.occurred_on, "the day it was done")

    @workflow.update
    async def correct_step(self, request: CorrectionRequest) -> StepState:
        await workflow.wait_condition(lambda: self._plan is not None)
        try:
            step = self._correctable(request)
        except ValueError as exc:
            raise ApplicationError(str(exc), type="StepNotActionable") from None
        changes = []
        if request.occurred_on is not None and step.completed_at is not None:
            before = self._local_day(step.completed_at)
            if request.occurred_on != before:
                step.completed_at = self._instant_on(request.occurred_on)
                changes.append(f"date {before.isoformat()} -> {request.occurred_on.isoformat()}")
        if request.complexity is not None and request.complexity != step.complexity:
            was = step.complexity.value if step.complexity else "not recorded"
            changes.append(f"complexity {was} -> {request.complexity.value}")
            step.complexity = request.complexity
        change = "; ".join(changes)
        step.corrections.append(
            Correction(at=workflow.now(), by=request.by, changes=change, reason=request.reason)
        )
        self._event("corrected", step.step_id, actor=request.by, detail=change)
        await self._publish()
        return step.model_copy(deep=True)

    @correct_step.validator
    def validate_correct_step(self, request: CorrectionRequest) -> None:
        self._correctable(request)

    def _correctable(self, request: CorrectionRequest) -> StepState:
        """A completed step, a change to make: the day it was done (from the discharge to
        today), the visit's complexity."""
        if self._status != TransitionStatus.ACTIVE:
            raise ValueError(f"the transition is {self._status.value}: it can no longer change")
        step = self._steps.get(request.step_id)
        if step is None:
            raise ValueError(
                f"unknown step {request.step_id!r}; steps are: {', '.join(self._steps)}"
            )
        if step.status != StepStatus.COMPLETED or step.completed_at is None:
            raise ValueError(
                f"step {request.step_id!r} is {step.status.value}: only a completed step can be "
                "corrected"
            )
        visit = self._element_step(TcmElement.FACE_TO_FACE_VISIT)
        if request.complexity is not None and (visit is None or visit.step_id != step.step_id):
            raise ValueError("the complexity is the face-to-face visit's: correct it on that step")
        self._check_day(request.occurred_on, "the day it was done")
        same_day = request.occurred_on in (None, self._local_day(step.completed_at))
        if same_day and request.complexity in (None, step.complexity):
            raise ValueError(f"nothing to correct: step {request.step_id!r} already says so")
        if len(step.corrections) >= MAX_CORRECTIONS_PER_STEP:
            raise ValueError(
                f"step {request.step_id!r} already has {MAX_CORRECTIONS_PER_STEP} corrections"
            )
        return step

    @workflow.update
    async def update_profile(self, request: ProfileRequest) -> PersonProfile:
        changed = sorted(
            name
            for name in PersonProfile.model_fields
            if getattr(request.profile, name) != getattr(self._profile, name)
        )
        self._profile = request.profile
        # The timeline says which fields changed, never their values (PHI).
        self._event("profile_updated", actor=request.by, detail=", ".join(changed) or "no change")
        await self._publish()
        return self._profile

    @update_profile.validator
    def validate_update_profile(self, request: ProfileRequest) -> None:
        if self._status != TransitionStatus.ACTIVE:
            raise ValueError(f"the transition is {self._status.value}")

    @workflow.update
    async def record_screening(self, request: ScreeningRequest) -> Screening:
        step = await self._ready(request.step_id)
        positive = request.answers.positive_domains()
        self._screening = Screening(
            at=workflow.now(), by=request.by, answers=request.answers, positive=positive
        )
        summary = ", ".join(d.value for d in positive) if positive else "none"
        self._complete(step, request.by, f"positive: {summary}", None)
        await self._publish()
        return self._screening

    @record_screening.validator
    def validate_record_screening(self, request: ScreeningRequest) -> None:
        step = self._actionable(request.step_id)
        if step.kind != StepKind.SCREENING:
            raise ValueError(f"step {request.step_id!r} is not a screening step")

    @workflow.update
    async def close_referral(self, request: ReferralRequest) -> Referral:
        step = await self._ready(request.step_id)
        domain = self._rules[step.step_id].referral_for
        assert domain is not None  # the validator checked the step's kind
        referral = Referral(
            step_id=step.step_id,
            domain=domain,
            resource=request.resource,
            outcome=request.outcome,
            at=workflow.now(),
            by=request.by,
            note=request.note,
        )
        self._referrals.append(referral)
        self._complete(step, request.by, request.outcome.value, request.note)
        await self._publish()
        return referral

    @close_referral.validator
    def validate_close_referral(self, request: ReferralRequest) -> None:
        step = self._actionable(request.step_id)
        domain = self._rules[step.step_id].referral_for
        if step.kind != StepKind.REFERRAL or domain is None:
            raise ValueError(f"step {request.step_id!r} is not a referral step")
        if request.resource.domain != domain:
            raise ValueError(
                f"resource {request.resource.id!r} serves {request.resource.domain.value}, "
                f"not {domain.value}"
            )

    def _complete(
        self,
        step: StepState,
        by: str,
        outcome: str,
        note: str | None,
        *,
        at: datetime | None = None,
    ) -> None:
        """Complete a step, done now or at `at` (a visit's day, a call's time)."""
        step.status = StepStatus.COMPLETED
        step.completed_at = at or workflow.now()
        step.completed_by = by
        step.outcome = outcome
        step.note = note
        self._event("completed", step.step_id, actor=by, detail=outcome)
        self._refresh_pending()

    @workflow.update
    async def record_attempt(self, request: AttemptRequest) -> StepState:
        step = await self._ready(request.step_id)
        if len(step.attempts) >= MAX_ATTEMPTS_PER_STEP:  # two at once both passed the validator
            raise ApplicationError(
                f"step {request.step_id!r} already has {MAX_ATTEMPTS_PER_STEP} attempts",
                type="StepNotActionable",
            )
        step.attempts.append(
            Attempt(at=workflow.now(), by=request.by, result=request.result, note=request.note)
        )
        self._event("attempt", step.step_id, actor=request.by, detail=request.result.value)
        if request.result == AttemptResult.REACHED:
            self._complete(step, request.by, "reached", request.note)
        await self._publish()
        return step.model_copy(deep=True)

    @record_attempt.validator
    def validate_record_attempt(self, request: AttemptRequest) -> None:
        step = self._actionable(request.step_id)
        if len(step.attempts) >= MAX_ATTEMPTS_PER_STEP:
            raise ValueError(
                f"step {request.step_id!r} already has {MAX_ATTEMPTS_PER_STEP} attempts"
            )

    @workflow.update
    async def reassign(self, request: ReassignRequest) -> StepState:
        step = await self._ready(request.step_id, allow_pending=True)
        step.assignee = request.to
        self._event("reassigned", step.step_id, actor=request.by, detail=f"to {request.to}")
        await self._publish()
        return step.model_copy(deep=True)

    @reassign.validator
    def validate_reassign(self, request: ReassignRequest) -> None:
        step = self._actionable(request.step_id, allow_pending=True)
        if step.assignee == request.to:
            raise ValueError(f"step {request.step_id!r} is already assigned to {request.to}")

    @workflow.update
    async def snooze(self, request: SnoozeRequest) -> StepState:
        step = await self._ready(request.step_id, allow_pending=True)
        schedule = await self._schedule(
            ScheduleStepRequest(
                rule=self._rules[step.step_id],
                anchor_at=self._input.discharged_at,
                tier=self._input.risk.tier,
                calendar=self._input.calendar,
                due_override=request.until,
                limit_at=step.limit_at,
            )
        )
        if step.is_terminal:
            raise ApplicationError(f"step {step.step_id!r} closed meanwhile", type="StepClosed")
        self._apply_schedule(schedule)
        step.snoozed_until = request.until
        self._reschedules[step.step_id] += 1
        self._event(
            "snoozed", step.step_id, actor=request.by, detail=f"until {request.until.isoformat()}"
        )
        await self._publish()
        return step.model_copy(deep=True)

    @snooze.validator
    def validate_snooze(self, request: SnoozeRequest) -> None:
        step = self._actionable(request.step_id, allow_pending=True)
        if step.due_at is None or step.limit_at is None:
            raise ValueError(f"step {request.step_id!r} has no due time yet")
        if request.until <= workflow.now() or request.until <= step.due_at:
            raise ValueError("snooze must move the due time later than it is now")
        if request.until > step.limit_at:
            raise ValueError(
                f"cannot snooze {request.step_id!r} past its deadline "
                f"{step.limit_at.isoformat()} (the protocol's limit for this step)"
            )

    @workflow.update
    async def cancel_step(self, request: CancelStepRequest) -> StepState:
        step = await self._ready(request.step_id, allow_pending=True)
        step.status = StepStatus.CANCELLED
        step.cancel_reason = request.reason
        self._event("cancelled", step.step_id, actor=request.by, detail=request.reason)
        if self._owned_steps:
            self._stop_dependents(step.step_id)
        await self._publish()
        return step.model_copy(deep=True)

    @cancel_step.validator
    def validate_cancel_step(self, request: CancelStepRequest) -> None:
        self._actionable(request.step_id, allow_pending=True)

    @workflow.update
    async def add_note(self, request: NoteRequest) -> Note:
        if len(self._notes) >= MAX_NOTES:  # two at once both passed the validator
            raise ApplicationError(
                f"this transition already has {MAX_NOTES} notes", type="TooManyNotes"
            )
        note = Note(at=workflow.now(), by=request.by, text=request.text, step_id=request.step_id)
        self._notes.append(note)
        self._event("note", request.step_id, actor=request.by)
        await self._publish()
        return note

    @add_note.validator
    def validate_add_note(self, request: NoteRequest) -> None:
        if self._owned_steps and self._status != TransitionStatus.ACTIVE:
            raise ValueError(f"the transition is {self._status.value}")
        if request.step_id is not None and request.step_id not in self._steps:
            raise ValueError(f"unknown step {request.step_id!r}")
        if len(self._notes) >= MAX_NOTES:
            raise ValueError(f"this transition already has {MAX_NOTES} notes")
