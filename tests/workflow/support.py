"""The time-skipping environment, a worker whose projection and notification activities go
to lists, and helpers to put the test server's clock where a scenario needs it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.planning import PlanningActivities
from schemas import keys
from schemas.protocol import RiskTier
from schemas.protocol_library import load_library
from schemas.risk import RiskAssessment
from schemas.site import Transport
from schemas.social_needs import (
    NO_NEEDS,
    FoodFrequency,
)
from schemas.transition import (
    AdtSignal,
    EscalationNotice,
    ProjectionRecord,
    StepState,
    TransitionInput,
    TransitionState,
)
from workers.runtime.embedded import find_binary
from workers.runtime.temporal import DATA_CONVERTER, ensure_search_attributes
from workflows.transition import TransitionWorkflow

NY = ZoneInfo("America/New_York")
PROTOCOLS_DIR = Path(__file__).resolve().parents[2] / "protocols"
LIBRARY = load_library(PROTOCOLS_DIR)
RECORDS: list[ProjectionRecord] = []
STARTED: list[WorkflowHandle[TransitionWorkflow, TransitionState]] = []
NOTICES: list[EscalationNotice] = []
# Positive for food (a "sometimes true") and transportation only.
FOOD_AND_TRANSPORT = NO_NEEDS.model_copy(
    update={"food_did_not_last": FoodFrequency.SOMETIMES, "transportation_kept_from_needs": True}
)
HIGH_RISK = RiskAssessment(lace=14, tier=RiskTier.HIGH)
STANDARD_RISK = RiskAssessment(lace=5, tier=RiskTier.STANDARD)


@activity.defn(name="record_transition")
async def record_transition(record: ProjectionRecord) -> bool:
    RECORDS.append(record)
    return True


@activity.defn(name="notify")
async def notify(notice: EscalationNotice) -> bool:
    NOTICES.append(notice)
    return True


def notices_for(transition_id: str, step_id: str | None = None) -> list[EscalationNotice]:
    return [
        n
        for n in NOTICES
        if n.transition_id == transition_id and (step_id is None or n.step_id == step_id)
    ]


async def start_time_skipping_env() -> WorkflowEnvironment:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=find_binary("temporal-test-server"),
    )
    await ensure_search_attributes(env.client, "default")
    return env


def new_worker(
    env: WorkflowEnvironment,
    task_queue: str | None = None,
    *,
    cache: bool = True,
    record: Callable[[ProjectionRecord], Awaitable[bool]] = record_transition,
    deliver: Callable[[EscalationNotice], Awaitable[bool]] = notify,
) -> Worker:
    """Real planning activities, recorded projection and notifications (or the test's own
    `record_transition` / `notify` activities), a fresh task queue (or the given one: a
    worker that comes back). Without a cache the worker keeps no sticky queue, so another
    worker takes its workflows at once."""
    planning = PlanningActivities()
    return Worker(
        env.client,
        max_cached_workflows=1000 if cache else 0,
        task_queue=task_queue or f"tq-{uuid.uuid4()}",
        workflows=[TransitionWorkflow],
        activities=[planning.plan_transition, planning.schedule_step, record, deliver],
    )


def _next(after: datetime, matches: list[date], at: time) -> datetime:
    for day in matches:
        candidate = datetime.combine(day, at, tzinfo=NY)
        if candidate > after:
            return candidate
    raise AssertionError("no candidate day")


def next_weekday(after: datetime, weekday: int, at: time) -> datetime:
    """The next local `weekday` (Monday = 0) at `at` after the given instant."""
    start = after.astimezone(NY).date()
    return _next(
        after,
        [
            start + timedelta(days=n)
            for n in range(15)
            if (start + timedelta(days=n)).weekday() == weekday
        ],
        at,
    )


def next_thanksgiving_eve(after: datetime, at: time) -> datetime:
    """The Wednesday before the next US Thanksgiving (fourth Thursday of November)."""
    eves = []
    for year in (after.year, after.year + 1):
        first = date(year, 11, 1)
        thursday = first + timedelta(days=(3 - first.weekday()) % 7 + 21)
        eves.append(thursday - timedelta(days=1))
    return _next(after, eves, at)


async def advance_to(env: WorkflowEnvironment, instant: datetime) -> None:
    now = await env.get_current_time()
    if instant > now:
        await env.sleep(instant - now)


async def start_transition(
    env: WorkflowEnvironment,
    worker: Worker,
    discharged_at: datetime,
    *,
    protocol: str = "discharge-home",
    risk: RiskAssessment = STANDARD_RISK,
    tid: str | None = None,
    received_at: datetime | None = None,
    start_signal: AdtSignal | None = None,
    transports: dict[str, Transport] | None = None,
) -> WorkflowHandle[TransitionWorkflow, TransitionState]:
    """A transition on the worker's queue; `start_signal` arrives with the start, before
    the plan (signal-with-start)."""
    tid = tid or uuid.uuid4().hex[:24]
    signalled: dict[str, Any] = (
        {"start_signal": "adt_event", "start_signal_args": [start_signal]} if start_signal else {}
    )
    handle = await env.client.start_workflow(
        TransitionWorkflow.run,
        TransitionInput(
            transition_id=tid,
            encounter_key=tid.ljust(64, "0"),
            facility="GENHOSP",
            discharged_at=discharged_at,
            received_at=received_at,
            protocol=LIBRARY.latest(protocol),
            risk=risk,
            calendar=LIBRARY.site.calendar,
            policy=LIBRARY.site.policy,
            channel_transports=transports,
        ),
        id=keys.workflow_id(tid),
        task_queue=worker.task_queue,
        **signalled,
    )
    STARTED.append(handle)
    return handle


async def terminate_started() -> None:
    """End what a test left running: the test server will not skip time past a workflow
    whose worker is gone."""
    while STARTED:
        handle = STARTED.pop()
        with contextlib.suppress(RPCError):  # already closed
            # The test server leaks its time-skipping lock if a workflow is terminated with a
            # workflow task or an activity in flight: let them finish first.
            request = DescribeWorkflowExecutionRequest(
                namespace=handle._client.namespace,
                execution=WorkflowExecution(workflow_id=handle.id),
            )
            service = handle._client.workflow_service
            length = -1
            for _ in range(60):  # quiet = the history stopped growing and nothing is pending
                raw = await service.describe_workflow_execution(request)
                quiet = raw.workflow_execution_info.history_length == length
                if quiet and not raw.pending_activities:
                    break
                length = raw.workflow_execution_info.history_length
                await asyncio.sleep(0.1)
            await handle.terminate("test finished")


async def planned_state(
    handle: WorkflowHandle[TransitionWorkflow, TransitionState],
) -> TransitionState:
    """The state once the plan activity has dated the steps."""
    for _ in range(100):
        state = await handle.query(TransitionWorkflow.get_state)
        if state.period_ends_at is not None:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError("the transition was never planned")


def steps_of(state: TransitionState) -> dict[str, StepState]:
    return {step.step_id: step for step in state.steps}


async def discharged_on(
    env: WorkflowEnvironment,
    worker: Worker,
    weekday: int = 0,
    at: time = time(9, 0),
    *,
    protocol: str = "discharge-home",
    risk: RiskAssessment = STANDARD_RISK,
) -> WorkflowHandle[TransitionWorkflow, TransitionState]:
    """Move the clock to the next such weekday and time, discharge then, wait for the plan."""
    discharged_at = next_weekday(await env.get_current_time(), weekday, at)
    await advance_to(env, discharged_at)
    handle = await start_transition(env, worker, discharged_at, protocol=protocol, risk=risk)
    if not LIBRARY.latest(protocol).closes_with:
        await planned_state(handle)
    return handle


def patch_markers(path: Path) -> list[str]:
    """The patch ids a committed history's markers record, in order."""
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    return [
        json.loads(event.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)[
            "id"
        ]
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        and event.marker_recorded_event_attributes.marker_name == "core_patch"
    ]
