"""How TransitionWorkflow calls carebridge's own short activities (planning, the projection
write, the worklist outbox): their timeouts and retries, local or regular, and how one that
gave up reaches the workflow. The activity itself is named at each call site by its method
(`PlanningActivities.plan_transition`, ...), so mypy checks the argument and the result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

ACTIVITY_TIMEOUT = timedelta(seconds=30)
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# A projection write or outbox row that PostgreSQL cannot take gives up after this long, so
# an outage of hours neither grows the history without bound nor holds Updates for long (the
# stale row is written again later: PROJECTION_REPAIR in transition_publishing.py). Past the
# first seconds its retries wait on timers, not inside the workflow task.
INTERNAL_DEADLINE = timedelta(minutes=2)
INTERNAL_LOCAL_RETRY = timedelta(seconds=2)
# ... and by attempts as well (1+2+...+60 s: about 2 minutes), which a local activity counts
# whatever clock the worker and server keep.
INTERNAL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=8)
# How an activity that gave up reaches the workflow: a regular one as ActivityError, a local
# one past its attempts as the cause itself (seen on the test server: ApplicationError).
GAVE_UP = (ActivityError, ApplicationError)
# Planning, scheduling, the projection write and in-app (worklist) notifications run as local
# activities in the workflow task that needs them (one server round trip instead of three),
# and a step that becomes overdue and escalates in the same instant publishes once; histories
# recorded before this patch keep replaying their regular activities.
LOCAL_ACTIVITIES_PATCH = "local-activities-v1"
ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")


def why(failure: BaseException) -> str:
    """The reason an activity gave up, for the timeline and the outbox (never patient data:
    activities raise ids, statuses and connection errors)."""
    cause = failure.cause if isinstance(failure, ActivityError) else failure
    return cause.message if isinstance(cause, ApplicationError) else type(cause).__name__


async def internal_activity(
    activity: Callable[[Any, ArgT], Awaitable[ResultT]],
    arg: ArgT,
    *,
    local: bool,
    deadline: timedelta | None = None,
) -> ResultT:
    """Run one of carebridge's own short activities (pure planning or one PostgreSQL
    statement): local to this worker when `local` (the workflow took LOCAL_ACTIVITIES_PATCH,
    asked by the caller just before). With a deadline, it gives up then (one of GAVE_UP)
    instead of retrying for ever."""
    retry = INTERNAL_RETRY if deadline else ACTIVITY_RETRY
    if local:
        return await workflow.execute_local_activity_method(
            activity,
            arg,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            schedule_to_close_timeout=deadline,
            local_retry_threshold=INTERNAL_LOCAL_RETRY if deadline else None,
            retry_policy=retry,
        )
    return await workflow.execute_activity_method(
        activity,
        arg,
        start_to_close_timeout=ACTIVITY_TIMEOUT,
        schedule_to_close_timeout=deadline,
        retry_policy=retry,
    )
