"""Due-time activities: a protocol and a discharge instant in, dated steps out."""

from __future__ import annotations

from zoneinfo import ZoneInfoNotFoundError

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.business_calendar import BusinessCalendar, calendar_name
from schemas.site import CalendarConfig
from schemas.transition import (
    PlanRequest,
    ScheduledEscalation,
    ScheduleStepRequest,
    StepSchedule,
    TransitionPlan,
)


class PlanningActivities:
    """Pure computation behind activities: results are recorded in history, never redone."""

    @activity.defn(name="plan_transition")
    async def plan_transition(self, request: PlanRequest) -> TransitionPlan:
        return build_plan(request)

    @activity.defn(name="schedule_step")
    async def schedule_step(self, request: ScheduleStepRequest) -> StepSchedule:
        return schedule_step(request)


def _calendar(config: CalendarConfig) -> BusinessCalendar:
    try:
        return BusinessCalendar(config)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ApplicationError(
            f"unknown time zone {config.timezone!r}", type="InvalidTimezone", non_retryable=True
        ) from exc


def schedule_step(request: ScheduleStepRequest) -> StepSchedule:
    """Due instant (or the snoozed one), snooze limit, and each escalation level's instant."""
    calendar = _calendar(request.calendar)
    due_rule = request.rule.due_for(request.tier)
    due_at = request.due_override or calendar.offset(
        request.anchor_at, due_rule.unit, due_rule.amount
    )
    limit_rule = request.rule.limit or due_rule
    limit_at = request.limit_at or max(
        calendar.offset(request.anchor_at, limit_rule.unit, limit_rule.amount), due_at
    )
    escalations = tuple(
        ScheduledEscalation(
            level=level.level,
            role=level.role,
            channel=level.channel,
            at=calendar.offset(due_at, level.delay.unit, level.delay.amount)
            if level.delay.amount
            else due_at,
        )
        for level in request.rule.escalation
    )
    return StepSchedule(
        step_id=request.rule.id, due_at=due_at, limit_at=limit_at, escalations=escalations
    )


def build_plan(request: PlanRequest) -> TransitionPlan:
    """Every step due from the discharge, and the period end; step-anchored steps wait."""
    calendar = _calendar(request.calendar)
    steps = tuple(
        schedule_step(
            ScheduleStepRequest(
                rule=rule,
                anchor_at=request.discharged_at,
                tier=request.tier,
                calendar=request.calendar,
            )
        )
        for rule in request.protocol.steps
        if rule.applies_to(request.tier) and rule.due_for(request.tier).after is None
    )
    return TransitionPlan(
        timezone=request.calendar.timezone,
        calendar=calendar_name(request.calendar),
        period_ends_at=calendar.period_end(request.discharged_at, request.protocol.period_days),
        steps=steps,
    )
