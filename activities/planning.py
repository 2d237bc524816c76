"""The due-time activity: turns a protocol and a discharge instant into a dated plan."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.business_calendar import calendar_name, due_at
from schemas.transition import PlannedStep, PlanRequest, TransitionPlan


class PlanningActivities:
    """Holds the site's default time zone; plans are pure computation otherwise."""

    def __init__(self, default_timezone: str) -> None:
        self._default_timezone = default_timezone

    @activity.defn(name="plan_transition")
    async def plan_transition(self, request: PlanRequest) -> TransitionPlan:
        return build_plan(request, self._default_timezone)


def build_plan(request: PlanRequest, default_timezone: str) -> TransitionPlan:
    zone_name = request.timezone or default_timezone
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ApplicationError(
            f"unknown time zone {zone_name!r}", type="InvalidTimezone", non_retryable=True
        ) from exc
    steps = tuple(
        PlannedStep(
            step_id=rule.id,
            title=rule.title,
            kind=rule.kind,
            owner_role=rule.owner_role,
            due_at=due_at(request.discharged_at, rule.due, zone),
        )
        for rule in request.protocol.steps
    )
    return TransitionPlan(timezone=zone_name, calendar=calendar_name(), steps=steps)
