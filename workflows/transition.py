"""TransitionWorkflow: one discharge, its pinned protocol's timed steps and escalation
ladders, the operator Updates and ADT signals that change it, and its 30-day outcome."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.person import PersonProfile
    from schemas.protocol import StepKind, StepRule
    from schemas.site import Transport
    from schemas.social_needs import Referral, Screening
    from schemas.transition import (
        AdtSignal,
        Attempt,
        AttemptRequest,
        AttemptResult,
        CancelStepRequest,
        CompleteStepRequest,
        EscalationNotice,
        Note,
        NoteRequest,
        PlanRequest,
        ProfileRequest,
        ProjectionRecord,
        ReassignRequest,
        ReferralRequest,
        ScheduledEscalation,
        ScheduleStepRequest,
        ScreeningRequest,
        SnoozeRequest,
        StepSchedule,
        StepState,
        StepStatus,
        StepSummary,
        TimelineEvent,
        TransitionInput,
        TransitionOutcome,
        TransitionPlan,
        TransitionState,
        TransitionStatus,
        UndeliveredNotice,
    )
    from workflows import search_attributes
    from workflows.outcome import transition_outcome

ACTIVITY_TIMEOUT = timedelta(seconds=30)
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# An e-mail or page that cannot go out (a refusal at once, transient failures for this long)
# is recorded on the timeline and stays undelivered in the outbox; the ladder goes on.
NOTIFY_DEADLINE = timedelta(hours=2)
NOTIFY_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))
# A projection write or outbox row that PostgreSQL cannot take gives up after this long, so
# an outage of hours neither grows the history without bound nor holds Updates for long;
# the row is then stale and written again (every write is the whole row) after
# PROJECTION_REPAIR, doubling up to PROJECTION_REPAIR_MAX, until it succeeds, and by any
# publish meanwhile. Past the first seconds its retries wait on timers, not inside the
# workflow task.
INTERNAL_DEADLINE = timedelta(minutes=2)
INTERNAL_LOCAL_RETRY = timedelta(seconds=2)
# ... and by attempts as well (1+2+...+60 s: about 2 minutes), which a local activity counts
# whatever clock the worker and server keep.
INTERNAL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=8)
PROJECTION_REPAIR = timedelta(minutes=15)
PROJECTION_REPAIR_MAX = timedelta(hours=4)
# How an activity that gave up reaches the workflow: a regular one as ActivityError, a local
# one past its attempts as the cause itself (seen on the test server: ApplicationError).
GAVE_UP = (ActivityError, ApplicationError)
WORKFLOW_TYPE = "TransitionWorkflow"
MAX_NOTES = 200  # keeps history and state bounded over a 30-day transition
MAX_ATTEMPTS_PER_STEP = 20
READMISSION_EVENTS = frozenset({"A01", "A06"})
CANCEL_EVENTS = frozenset({"A11", "A13"})
READMITTED = "readmitted"
GENERATION_STRIDE = 1_000_000
# Planning, scheduling, the projection write and in-app (worklist) notifications run as local
# activities in the workflow task that needs them (one server round trip instead of three),
# and a step that becomes overdue and escalates in the same instant publishes once; histories
# recorded before this patch keep replaying their regular activities.
LOCAL_ACTIVITIES_PATCH = "local-activities-v1"
IN_APP_CHANNEL = "worklist"  # its delivery is the outbox row itself: no external call
# A discharge that arrives late (a replayed queue, an HIE that forwards a day later): a step
# whose deadline had already passed is recorded as missed before arrival and climbs no
# escalation ladder; the team gets one "arrived late" worklist notice instead. Histories
# recorded before this patch keep escalating such steps as they did.
LATE_ARRIVAL_PATCH = "late-arrival-v1"
# One task owns each step: a readmission withdrawn while the step's task is still alive
# (an A01 and its A11 in one activation, or before the plan) no longer starts a second one.
# A cancelled prerequisite stops the steps that wait for it. The closing publish comes
# before the last wait for handlers, and a closed transition takes no note.
OWNED_STEPS_PATCH = "owned-steps-v1"
# A redelivered message is handled once: every id is remembered for the last
# SEEN_WINDOW messages, and the ids of messages that change the transition (admissions,
# cancels, deaths, merges: a few per transition) for as long as it runs, up to
# MAX_DECISIVE_MESSAGES. Before this patch an A01 redelivered after 50 later messages
# stopped outreach again even after its readmission had been withdrawn.
REDELIVERY_PATCH = "decisive-messages-v1"
SEEN_WINDOW = 50
MAX_DECISIVE_MESSAGES = 500
# HL7 chapter 3 orders A13 (cancel discharge) before A11 (cancel admit): an A11 of the
# discharged visit itself no longer cancels its transition, it is recorded. Before this
# patch it closed the transition as cancelled. (A12, cancel transfer, was never delivered
# before it, so its location update needs no patch.)
CANCEL_ORDER_PATCH = "cancel-order-v1"
# Messages of a visit can arrive out of order: an A08 whose event time (EVN-6, EVN-2, else
# MSH-7) is older than that of the last A08 applied carries older patient information, and
# is recorded on the timeline as not applied. Before this patch the last A08 to arrive won.
ORDERED_UPDATES_PATCH = "ordered-updates-v1"
# Merges that re-key the transition to the surviving patient: A34, A36, A39, A40 and A47
# (a change of identifier). Only A40 was delivered before; the router answered the others
# "has no effect" and never signalled them, so taking them needs no patch.
MERGE_EVENTS = frozenset({"A34", "A36", "A39", "A40", "A47"})
DECISIVE_EVENTS = READMISSION_EVENTS | CANCEL_EVENTS | MERGE_EVENTS | {"A04"}
T = TypeVar("T")


def why(failure: BaseException) -> str:
    """The reason an activity gave up, for the timeline and the outbox (never patient data:
    activities raise ids, statuses and connection errors)."""
    cause = failure.cause if isinstance(failure, ActivityError) else failure
    return cause.message if isinstance(cause, ApplicationError) else type(cause).__name__


@workflow.defn(name=WORKFLOW_TYPE)
class TransitionWorkflow:
    """Runs every step of a pinned protocol concurrently: a step waits for its prerequisites,
    then for its completion or its next deadline (`wait_condition` with a timeout), and climbs
    its escalation ladder while it stays open. Operator actions are validated Updates; later
    ADT events are signals. The transition closes at the end of its period (or earlier when
    cancelled or the patient dies) with an outcome summary."""

    @workflow.init
    def __init__(self, input: TransitionInput) -> None:
        self._input = input
        tier = input.risk.tier
        self._rules: dict[str, StepRule] = {
            rule.id: rule for rule in input.protocol.steps if rule.applies_to(tier)
        }
        self._steps: dict[str, StepState] = {
            rule.id: StepState(
                step_id=rule.id,
                title=rule.title,
                kind=rule.kind,
                owner_role=rule.owner_role,
                status=StepStatus.PENDING,
                referral_for=rule.referral_for,
            )
            for rule in self._rules.values()
        }
        self._plan: TransitionPlan | None = None
        self._status = TransitionStatus.ACTIVE
        self._reason = ""
        self._readmitted_at: datetime | None = None
        self._readmission_encounter: str | None = None
        self._patient_class = input.patient_class
        self._location = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._step_tasks: dict[str, asyncio.Task[None]] = {}
        # Asked here, before any handler or activity can run (see LATE_ARRIVAL_PATCH in run).
        self._owned_steps = workflow.patched(OWNED_STEPS_PATCH)
        self._patient_key = input.patient_key
        self._contact_numbers: list[str] = []
        self._information_at: datetime | None = None  # event time of the last A08 applied
        self._notes: list[Note] = []
        self._outcome: TransitionOutcome | None = None
        self._profile = input.profile
        self._screening: Screening | None = None
        self._referrals: list[Referral] = []
        self._seen_messages: list[str] = []
        self._decisive_messages: set[str] = set()
        self._reschedules: dict[str, int] = dict.fromkeys(self._steps, 0)
        self._events: list[TimelineEvent] = []
        self._undelivered: list[UndeliveredNotice] = []  # for the outbox, with the next row
        # Versions and timeline numbers continue across generations of one encounter's
        # transition (a discharge again after a cancelled one), so the projection keeps order.
        self._seq = (input.generation - 1) * GENERATION_STRIDE
        self._version = (input.generation - 1) * GENERATION_STRIDE
        self._published_attributes: tuple[object, ...] | None = None
        self._publish_lock = asyncio.Lock()
        self._projection_stale = False
        self._repair: asyncio.Task[None] | None = None

    # ---- main ---------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: TransitionInput) -> TransitionState:
        protocol = input.protocol
        # Asked before the first (local) activity: a query that arrives while the plan runs
        # splits the workflow task there, and a patch marker after that split does not replay.
        late_arrivals = workflow.patched(LATE_ARRIVAL_PATCH)
        self._event(
            "started",
            detail=f"protocol {protocol.id} v{protocol.version}; risk {input.risk.tier.value} "
            f"(LACE {input.risk.lace})",
        )
        if protocol.closes_with:
            status = (
                TransitionStatus.DECEASED
                if protocol.closes_with == "deceased"
                else TransitionStatus.COMPLETED
            )
            self._finish(status, f"closed at start: {protocol.closes_with}")
            return await self._close()

        self._plan = await self._internal_activity(
            "plan_transition",
            PlanRequest(
                discharged_at=input.discharged_at,
                protocol=protocol,
                tier=input.risk.tier,
                calendar=input.calendar,
            ),
            TransitionPlan,
        )
        for schedule in self._plan.steps:
            self._apply_schedule(schedule)
        self._refresh_pending()
        missed = self._missed_before_arrival() if late_arrivals else []
        await self._publish()
        if missed:
            notice = self._arrived_late_notice(missed)
            try:
                await self._internal_activity("notify", notice, bool, deadline=INTERNAL_DEADLINE)
            except GAVE_UP as failure:
                self._event(
                    "notification_failed", detail="the arrived-late notice was not recorded"
                )
                self._undelivered.append(UndeliveredNotice(notice=notice, failure=why(failure)))

        if self._owned_steps:
            for step_id in self._steps:
                self._ensure_step_task(step_id)
        else:
            self._tasks = [asyncio.create_task(self._run_step(step_id)) for step_id in self._steps]
        remaining = self._plan.period_ends_at - workflow.now()
        try:
            await workflow.wait_condition(
                lambda: self._status != TransitionStatus.ACTIVE,
                timeout=max(remaining, timedelta(seconds=1)),
                timeout_summary="transition period ends",
            )
        except TimeoutError:
            self._finish(TransitionStatus.COMPLETED, "transition period ended")
        while running := [task for task in self._tasks if not task.done()]:
            await asyncio.gather(*running)  # a withdrawn readmission may add tasks meanwhile
        return await self._close()

    async def _close(self) -> TransitionState:
        if not self._owned_steps:
            await workflow.wait_condition(workflow.all_handlers_finished)
        self._outcome = transition_outcome(
            self._input,
            self._steps,
            self._status,
            self._reason,
            workflow.now(),
            self._readmitted_at,
        )
        tcm = self._outcome.tcm
        self._event(
            "closed",
            detail=f"{self._status.value}: {self._reason}; TCM "
            + (tcm.code or "not eligible" if tcm.applicable else "not applicable"),
        )
        await self._publish()
        if self._owned_steps:  # the last await: nothing accepted meanwhile is left unfinished
            await workflow.wait_condition(workflow.all_handlers_finished)
        return self.get_state()

    # ---- one step -----------------------------------------------------------------------

    def _ensure_step_task(self, step_id: str) -> None:
        """Start the step's task unless its task is still alive (it carries on by itself)."""
        task = self._step_tasks.get(step_id)
        if task is None or task.done():
            self._step_tasks[step_id] = asyncio.create_task(self._run_step(step_id))
            self._tasks.append(self._step_tasks[step_id])

    async def _run_step(self, step_id: str) -> None:
        step = self._steps[step_id]
        rule = self._rules[step_id]
        anchor = rule.due_for(self._input.risk.tier).after
        if step.due_at is None and anchor is not None:
            await workflow.wait_condition(
                lambda: step.is_terminal or self._steps[anchor].is_terminal
            )
            if step.is_terminal:
                return
            anchor_step = self._steps[anchor]
            if anchor_step.status != StepStatus.COMPLETED or anchor_step.completed_at is None:
                self._stop(step, f"{anchor} was {anchor_step.status.value}")
                await self._publish()
                return
            domain = rule.referral_for
            if domain is not None and (
                self._screening is None or domain not in self._screening.positive
            ):
                step.status = StepStatus.NOT_NEEDED
                step.cancel_reason = f"{domain.value} screened negative"
                self._event("not_needed", step_id, detail=step.cancel_reason)
                await self._publish()
                return
            schedule = await self._schedule(
                ScheduleStepRequest(
                    rule=rule,
                    anchor_at=anchor_step.completed_at,
                    tier=self._input.risk.tier,
                    calendar=self._input.calendar,
                )
            )
            if step.is_terminal:
                return
            self._apply_schedule(schedule)
            self._event("scheduled", step_id, detail=f"due {schedule.due_at.isoformat()}")
            await self._publish()

        while not step.is_terminal:
            generation = self._reschedules[step_id]

            def changed(gen: int = generation) -> bool:
                return step.is_terminal or self._reschedules[step_id] != gen

            deadline = self._next_deadline(step)
            if deadline is None:
                await workflow.wait_condition(changed)
                continue
            instant, escalation = deadline
            if instant > workflow.now():
                try:
                    await workflow.wait_condition(
                        changed,
                        timeout=instant - workflow.now(),
                        timeout_summary=f"{step_id} deadline",
                    )
                    continue
                except TimeoutError:
                    pass
            if escalation is None:
                step.overdue_since = workflow.now()
                self._event("overdue", step_id)
                following = self._next_deadline(step)
                if not (
                    following
                    and following[0] <= workflow.now()
                    and workflow.patched(LOCAL_ACTIVITIES_PATCH)
                ):
                    await self._publish()  # else the escalation due now publishes both
            else:
                await self._escalate(step, escalation, generation)

    def _next_deadline(self, step: StepState) -> tuple[datetime, ScheduledEscalation | None] | None:
        """The step's next instant: becoming overdue, then each escalation level in order."""
        if step.due_at is None:
            return None
        if step.overdue_since is None:
            return step.due_at, None
        for escalation in step.escalations:
            if escalation.level > step.escalation_level:
                return escalation.at, escalation
        return None

    async def _escalate(
        self, step: StepState, escalation: ScheduledEscalation, generation: int
    ) -> None:
        assert step.due_at is not None
        notice = EscalationNotice(
            transition_id=self._input.transition_id,
            step_id=step.step_id,
            level=escalation.level,
            role=escalation.role,
            channel=escalation.channel,
            transport=self._transport(escalation.channel),
            due_at=step.due_at,
            scheduled_at=escalation.at,
        )
        try:
            if self._in_app(escalation.channel):  # an outbox row only
                await self._internal_activity("notify", notice, bool, deadline=INTERNAL_DEADLINE)
            else:
                await workflow.execute_activity(
                    "notify",
                    notice,
                    result_type=bool,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    schedule_to_close_timeout=NOTIFY_DEADLINE,
                    retry_policy=NOTIFY_RETRY,
                )
        except GAVE_UP as failure:
            reason = why(failure)
            self._event(
                "notification_failed",
                step.step_id,
                detail=f"level {escalation.level} via {escalation.channel}: not delivered "
                f"({reason}); kept in the undelivered list",
            )
            self._undelivered.append(UndeliveredNotice(notice=notice, failure=reason))
        if step.is_terminal or self._reschedules[step.step_id] != generation:
            return  # completed or snoozed while the notification went out
        step.escalation_level = escalation.level
        self._event(
            "escalated",
            step.step_id,
            detail=f"level {escalation.level}: {escalation.role} via {escalation.channel}",
        )
        await self._publish()

    def _transport(self, channel: str) -> Transport | None:
        """The channel's transport as the site mapped it when the transition started (the
        notify activity maps an unknown channel to the worklist too); None: recorded before
        transports were part of the input."""
        transports = self._input.channel_transports
        return None if transports is None else transports.get(channel, Transport.WORKLIST)

    def _in_app(self, channel: str) -> bool:
        """Whether a notice on this channel is only an outbox row (a local activity in this
        workflow task) rather than an e-mail or a page (a remote activity that may wait)."""
        transport = self._transport(channel)
        return channel == IN_APP_CHANNEL if transport is None else transport == Transport.WORKLIST

    async def _schedule(self, request: ScheduleStepRequest) -> StepSchedule:
        return await self._internal_activity("schedule_step", request, StepSchedule)

    async def _internal_activity(
        self, name: str, arg: object, result_type: type[T], *, deadline: timedelta | None = None
    ) -> T:
        """Run one of carebridge's own short activities (pure planning or one PostgreSQL
        statement): local to this worker once the workflow carries the patch marker. With a
        deadline, it gives up then (one of GAVE_UP) instead of retrying for ever."""
        if workflow.patched(LOCAL_ACTIVITIES_PATCH):
            result: T = await workflow.execute_local_activity(
                name,
                arg,
                result_type=result_type,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                schedule_to_close_timeout=deadline,
                local_retry_threshold=INTERNAL_LOCAL_RETRY if deadline else None,
                retry_policy=INTERNAL_RETRY if deadline else ACTIVITY_RETRY,
            )
        else:
            result = await workflow.execute_activity(
                name,
                arg,
                result_type=result_type,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                schedule_to_close_timeout=deadline,
                retry_policy=INTERNAL_RETRY if deadline else ACTIVITY_RETRY,
            )
        return result

    def _missed_before_arrival(self) -> list[StepState]:
        """Steps already past their deadline when the discharge arrived: overdue since then,
        with no ladder to climb (a snooze within the step's limit gives it a new one). Only
        the intake knows when a discharge arrived; a transition started without it (a test,
        a benchmark) runs every ladder."""
        arrived = self._input.received_at
        if arrived is None:
            return []
        missed = [
            step
            for step in self._steps.values()
            if step.due_at is not None and step.due_at <= arrived and not step.is_terminal
        ]
        for step in missed:
            assert step.due_at is not None
            step.missed_before_arrival = True
            step.overdue_since = step.due_at
            step.escalations = []
            self._event(
                "missed_before_arrival",
                step.step_id,
                detail=f"due {step.due_at.isoformat()}; the discharge arrived "
                f"{arrived.isoformat()}",
            )
        return missed

    def _arrived_late_notice(self, missed: list[StepState]) -> EscalationNotice:
        """The one notice of a late discharge: on the worklist, never e-mail or a page."""
        first = min(missed, key=lambda step: step.due_at or self._input.discharged_at)
        assert first.due_at is not None and self._input.received_at is not None
        return EscalationNotice(
            transition_id=self._input.transition_id,
            step_id=first.step_id,
            level=0,
            role=first.owner_role,
            channel=IN_APP_CHANNEL,
            transport=Transport.WORKLIST,
            due_at=first.due_at,
            scheduled_at=self._input.received_at,
            missed_before_arrival=tuple(step.step_id for step in missed),
        )

    def _apply_schedule(self, schedule: StepSchedule) -> None:
        step = self._steps[schedule.step_id]
        step.due_at = schedule.due_at
        step.limit_at = schedule.limit_at
        step.escalations = list(schedule.escalations)
        step.escalation_level = 0
        step.overdue_since = None

    def _prerequisites(self, step_id: str) -> set[str]:
        rule = self._rules[step_id]
        anchor = rule.due_for(self._input.risk.tier).after
        required = set(rule.prerequisites) | ({anchor} if anchor else set())
        return {p for p in required if p in self._steps}

    def _refresh_pending(self) -> None:
        """Open every pending step whose prerequisites are complete."""
        for step_id, step in self._steps.items():
            if step.status == StepStatus.PENDING and all(
                self._steps[p].status == StepStatus.COMPLETED for p in self._prerequisites(step_id)
            ):
                step.status = StepStatus.OPEN

    def _stop(self, step: StepState, reason: str) -> None:
        step.status = StepStatus.STOPPED
        step.cancel_reason = reason
        self._event("stopped", step.step_id, detail=reason)

    def _stop_dependents(self, step_id: str) -> None:
        """Steps that wait for one that can no longer complete stop, with the reason (and
        theirs in turn), instead of escalating while every action on them is refused."""
        for dependent_id, dependent in self._steps.items():
            if not dependent.is_terminal and step_id in self._prerequisites(dependent_id):
                self._stop(dependent, f"{step_id} was {self._steps[step_id].status.value}")
                self._stop_dependents(dependent_id)

    def _stop_outreach(self, reason: str) -> None:
        for step in self._steps.values():
            if not step.is_terminal:
                self._stop(step, reason)

    def _finish(self, status: TransitionStatus, reason: str) -> None:
        if self._status != TransitionStatus.ACTIVE:
            return
        self._status = status
        self._reason = reason
        self._stop_outreach(reason)

    # ---- queries ------------------------------------------------------------------------

    @workflow.query
    def get_state(self) -> TransitionState:
        return TransitionState(
            transition_id=self._input.transition_id,
            facility=self._input.facility,
            status=self._status,
            protocol_id=self._input.protocol.id,
            protocol_version=self._input.protocol.version,
            discharged_at=self._input.discharged_at,
            risk=self._input.risk,
            received_at=self._input.received_at,
            timezone=self._input.calendar.timezone,
            period_ends_at=self._plan.period_ends_at if self._plan else None,
            readmitted_at=self._readmitted_at,
            contact_numbers=list(self._contact_numbers),
            generation=self._input.generation,
            steps=[step.model_copy(deep=True) for step in self._steps.values()],
            notes=list(self._notes),
            outcome=self._outcome,
            version=self._version,
            profile=self._profile,
            screening=self._screening,
            referrals=list(self._referrals),
        )

    # ---- operator updates ---------------------------------------------------------------

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

    @workflow.update
    async def complete_step(self, request: CompleteStepRequest) -> StepState:
        step = await self._ready(request.step_id)
        self._complete(step, request.by, request.outcome, request.note)
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

    def _complete(self, step: StepState, by: str, outcome: str, note: str | None) -> None:
        step.status = StepStatus.COMPLETED
        step.completed_at = workflow.now()
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

    @workflow.signal
    async def republish(self) -> None:
        """Write the projection row again (the consistency sweep found it missing)."""
        await self._publish()

    # ---- ADT signals --------------------------------------------------------------------

    @workflow.signal
    async def adt_event(self, signal: AdtSignal) -> None:
        control_id = signal.message_control_id
        if control_id in self._seen_messages:
            return  # a redelivered message: handled once
        if control_id in self._decisive_messages and workflow.patched(REDELIVERY_PATCH):
            return  # ... also when it comes back after many later ones
        self._seen_messages = [*self._seen_messages[-(SEEN_WINDOW - 1) :], control_id]
        decisive = signal.event_type in DECISIVE_EVENTS or signal.deceased
        if decisive and len(self._decisive_messages) < MAX_DECISIVE_MESSAGES:
            self._decisive_messages.add(control_id)
        kind = signal.event_type
        detail = f"{kind} ({signal.message_control_id})"
        if self._status != TransitionStatus.ACTIVE:
            self._event("adt_ignored", detail=f"{detail}: transition already {self._status.value}")
        elif signal.deceased:
            self._event("adt", detail=f"{detail}: patient died")
            self._finish(TransitionStatus.DECEASED, f"patient died ({kind})")
        elif kind in CANCEL_EVENTS:
            self._cancel(signal, detail)
        elif kind in READMISSION_EVENTS or (kind == "A04" and signal.patient_class == "I"):
            self._readmit(signal, detail)
        elif kind == "A08":
            self._update_information(signal, detail)
        elif kind in ("A02", "A07", "A12"):
            self._location = signal.location or self._location
            self._patient_class = signal.patient_class or self._patient_class
            where = self._location.split("^")[0] or "unknown"  # PV1-3's point of care
            self._event("adt", detail=f"{detail}: location {where}, class {self._patient_class}")
        elif kind in MERGE_EVENTS and signal.merged_into_patient_key:
            self._patient_key = signal.merged_into_patient_key
            self._event("adt", detail=f"{detail}: patient merged")
        else:
            self._event("adt_ignored", detail=f"{detail}: no effect on a transition")
        await self._publish()

    def _update_information(self, signal: AdtSignal, detail: str) -> None:
        """A08: its contact numbers replace the kept ones, unless an A08 that happened
        later was applied already (see ORDERED_UPDATES_PATCH)."""
        last = self._information_at
        if (
            last is not None
            and signal.occurred_at < last
            and workflow.patched(ORDERED_UPDATES_PATCH)
        ):
            self._event("adt_ignored", detail=f"{detail}: older than the last update: not applied")
            return
        if signal.contact_numbers is not None:
            self._contact_numbers = list(signal.contact_numbers)
        self._information_at = signal.occurred_at if last is None else max(last, signal.occurred_at)
        self._event("adt", detail=f"{detail}: patient information updated")

    def _cancel(self, signal: AdtSignal, detail: str) -> None:
        """A13 of this discharge cancels it; A11 of the readmission withdraws that."""
        own = signal.encounter_key in (None, self._input.encounter_key)
        if own and signal.event_type == "A11" and workflow.patched(CANCEL_ORDER_PATCH):
            self._event("adt_ignored", detail=f"{detail}: after the discharge (A13 cancels it)")
        elif own:
            self._event("adt", detail=f"{detail}: discharge cancelled")
            self._finish(TransitionStatus.CANCELLED, f"discharge cancelled ({signal.event_type})")
        elif signal.encounter_key == self._readmission_encounter:
            self._withdraw_readmission(detail)
        else:
            self._event("adt_ignored", detail=f"{detail}: cancels another encounter")

    def _readmit(self, signal: AdtSignal, detail: str) -> None:
        period_end = self._plan.period_ends_at if self._plan else None
        if period_end is not None and signal.occurred_at > period_end:
            self._event("adt_ignored", detail=f"{detail}: admission after the period")
            return
        if self._readmitted_at is None:
            self._readmitted_at = signal.occurred_at
            self._readmission_encounter = signal.encounter_key
        self._event("readmitted", detail=f"{detail}: outreach stopped")
        self._stop_outreach(f"{READMITTED} ({signal.event_type})")

    def _withdraw_readmission(self, detail: str) -> None:
        """A11 cancelled the admission that stopped outreach: resume the stopped steps."""
        self._readmitted_at = None
        self._readmission_encounter = None
        self._event("readmission_withdrawn", detail=f"{detail}: outreach resumed")
        for step_id, step in self._steps.items():
            if step.status == StepStatus.STOPPED and (step.cancel_reason or "").startswith(
                READMITTED
            ):
                step.status = StepStatus.PENDING
                step.cancel_reason = None
                if self._owned_steps:
                    if self._plan is not None:  # before the plan, run() starts every task
                        self._ensure_step_task(step_id)
                else:
                    self._tasks.append(asyncio.create_task(self._run_step(step_id)))
        self._refresh_pending()

    # ---- projection ---------------------------------------------------------------------

    def _event(
        self, kind: str, step_id: str | None = None, *, actor: str | None = None, detail: str = ""
    ) -> None:
        self._seq += 1
        self._events.append(
            TimelineEvent(
                seq=self._seq,
                at=workflow.now(),
                kind=kind,
                step_id=step_id,
                actor=actor,
                detail=detail,
            )
        )

    def _projection(self, events: tuple[TimelineEvent, ...]) -> ProjectionRecord:
        live = [s for s in self._steps.values() if not s.is_terminal and s.due_at is not None]
        live.sort(key=lambda s: s.due_at or self._input.discharged_at)
        return ProjectionRecord(
            transition_id=self._input.transition_id,
            encounter_key=self._input.encounter_key,
            facility=self._input.facility,
            protocol_id=self._input.protocol.id,
            protocol_version=self._input.protocol.version,
            status=self._status,
            discharged_at=self._input.discharged_at,
            risk_tier=self._input.risk.tier,
            lace=self._input.risk.lace,
            current_step=live[0].step_id if live else None,
            next_due_at=live[0].due_at if live else None,
            overdue_steps=tuple(s.step_id for s in live if s.overdue_since is not None),
            escalation_level=max((s.escalation_level for s in live), default=0),
            readmitted_at=self._readmitted_at,
            steps=tuple(self._summary(step) for step in self._steps.values()),
            outcome=self._outcome,
            events=events,
            undelivered=tuple(self._undelivered),
            version=self._version,
        )

    def _summary(self, step: StepState) -> StepSummary:
        element = self._rules[step.step_id].tcm_element
        return StepSummary(
            step_id=step.step_id,
            status=step.status,
            tcm_element=element.value if element else None,
            assignee=step.assignee,
            due_at=step.due_at,
            limit_at=step.limit_at,
            overdue_since=step.overdue_since,
            missed_before_arrival=step.missed_before_arrival,
            escalation_level=step.escalation_level,
            completed_at=step.completed_at,
            completed_by=step.completed_by,
            outcome=step.outcome,
            complexity=step.complexity,
            attempts=tuple((a.at, a.result) for a in step.attempts),
        )

    def _upsert_search_attributes(self, record: ProjectionRecord) -> None:
        values = (record.status, record.next_due_at, record.overdue_steps)
        if values == self._published_attributes:
            return  # an unchanged upsert would only grow the history
        self._published_attributes = values
        workflow.upsert_search_attributes(
            [
                search_attributes.STATUS.value_set(record.status.value),
                search_attributes.PROTOCOL.value_set(record.protocol_id),
                search_attributes.FACILITY.value_set(record.facility),
                search_attributes.NEXT_DUE_AT.value_set(record.next_due_at)
                if record.next_due_at
                else search_attributes.NEXT_DUE_AT.value_unset(),
                search_attributes.OVERDUE_STEPS.value_set(list(record.overdue_steps)),
            ]
        )

    async def _publish(self) -> None:
        """Bump the version, update search attributes, write the projection and timeline."""
        async with self._publish_lock:
            self._version += 1
            events = tuple(self._events)
            record = self._projection(events)
            self._upsert_search_attributes(record)
            try:
                await self._internal_activity(
                    "record_transition", record, bool, deadline=INTERNAL_DEADLINE
                )
            except GAVE_UP:
                # PostgreSQL is away: the events wait for the next write, which repeats.
                if not self._projection_stale:  # one repair loop; the close never waits on it
                    self._projection_stale = True
                    self._repair = asyncio.create_task(self._repair_projection())
                return
            self._projection_stale = False
            sent = {event.seq for event in events}
            self._events = [event for event in self._events if event.seq not in sent]
            self._undelivered = self._undelivered[len(record.undelivered) :]

    async def _repair_projection(self) -> None:
        """Write the stale row again, less often the longer it fails, until a write succeeds
        (the transition itself goes on meanwhile; only the projection lags)."""
        wait = PROJECTION_REPAIR
        while self._projection_stale and self._status == TransitionStatus.ACTIVE:
            await workflow.sleep(wait, summary="projection write retried")
            await self._publish()
            wait = min(wait * 2, PROJECTION_REPAIR_MAX)
