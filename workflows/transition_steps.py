"""The step runner and escalation ladder: each step of the pinned protocol runs in its own
task, waits for its prerequisites, then for its completion or its next deadline, becomes
overdue and climbs its escalation ladder while it stays open. Also the step changes the
Updates and the ADT signals share: scheduling, opening, stopping, finishing the transition."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.notifications import NotificationActivities
    from activities.planning import PlanningActivities
    from schemas.site import Transport
    from schemas.transition import (
        EscalationNotice,
        ScheduledEscalation,
        ScheduleStepRequest,
        StepSchedule,
        StepState,
        StepStatus,
        TransitionStatus,
        UndeliveredNotice,
    )

from workflows.transition_activities import (
    ACTIVITY_TIMEOUT,
    GAVE_UP,
    INTERNAL_DEADLINE,
    internal_activity,
    why,
)
from workflows.transition_publishing import TransitionPublishing

# An e-mail or page that cannot go out (a refusal at once, transient failures for this long)
# is recorded on the timeline and stays undelivered in the outbox; the ladder goes on.
NOTIFY_DEADLINE = timedelta(hours=2)
NOTIFY_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))
IN_APP_CHANNEL = "worklist"  # its delivery is the outbox row itself: no external call
# A discharge that arrives late (a replayed queue, an HIE that forwards a day later): a step
# whose deadline had already passed is recorded as missed before arrival and climbs no
# escalation ladder; the team gets one "arrived late" worklist notice instead. Histories
# recorded before this patch keep escalating such steps as they did.
LATE_ARRIVAL_PATCH = "late-arrival-v1"


class TransitionSteps(TransitionPublishing):
    """One task a step, its deadlines and ladder, and the changes of step state."""

    def _start_step_tasks(self) -> None:
        """A task for every step, once the plan has dated them."""
        if self._owned_steps:
            for step_id in self._steps:
                self._ensure_step_task(step_id)
        else:
            self._tasks = [asyncio.create_task(self._run_step(step_id)) for step_id in self._steps]

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
                if not (following and following[0] <= workflow.now() and self._local_activities):
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
        await self._deliver(notice, f"level {escalation.level} via {escalation.channel}")
        if step.is_terminal or self._reschedules[step.step_id] != generation:
            return  # completed or snoozed while the notification went out
        step.escalation_level = escalation.level
        self._event(
            "escalated",
            step.step_id,
            detail=f"level {escalation.level}: {escalation.role} via {escalation.channel}",
        )
        await self._publish()

    async def _deliver(self, notice: EscalationNotice, what: str) -> str | None:
        """Record one notice in the outbox and send it (a worklist notice is the outbox row
        only, in this workflow task; an e-mail or a page a remote activity that may wait).
        When its delivery gives up it is kept for the outbox with the next projection row,
        the timeline says so (`what`: the notice, as it reads there), and the reason is
        returned."""
        try:
            if self._in_app(notice.channel):
                self._in_app_deliveries += 1
                try:
                    await internal_activity(
                        NotificationActivities.notify,
                        notice,
                        deadline=INTERNAL_DEADLINE,
                        local=self._local_activities,
                    )
                finally:
                    self._in_app_deliveries -= 1
            else:
                await workflow.execute_activity_method(
                    NotificationActivities.notify,
                    notice,
                    start_to_close_timeout=ACTIVITY_TIMEOUT,
                    schedule_to_close_timeout=NOTIFY_DEADLINE,
                    retry_policy=NOTIFY_RETRY,
                )
        except GAVE_UP as failure:
            reason = why(failure)
            self._undelivered.append(UndeliveredNotice(notice=notice, failure=reason))
            self._event(
                "notification_failed",
                notice.step_id,
                detail=f"{what}: not delivered ({reason}); kept in the undelivered list",
            )
            return reason
        return None

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
        return await internal_activity(
            PlanningActivities.schedule_step,
            request,
            local=self._local_activities,
        )

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

    async def _notify_arrived_late(self, missed: list[StepState]) -> None:
        """Put the one arrived-late notice in the outbox (the worklist); when the outbox
        cannot take it, the timeline says so and the next projection row lists it."""
        notice = self._arrived_late_notice(missed)
        try:
            await internal_activity(
                NotificationActivities.notify,
                notice,
                deadline=INTERNAL_DEADLINE,
                local=self._local_activities,
            )
        except GAVE_UP as failure:
            self._event("notification_failed", detail="the arrived-late notice was not recorded")
            self._undelivered.append(UndeliveredNotice(notice=notice, failure=why(failure)))

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
