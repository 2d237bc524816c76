"""TransitionWorkflow: one discharge, its protocol's timed steps, until every step is done."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from schemas.transition import (
        CompleteStepRequest,
        PlanRequest,
        ProjectionRecord,
        StepState,
        StepStatus,
        TransitionInput,
        TransitionPlan,
        TransitionState,
        TransitionStatus,
    )
    from workflows import search_attributes

ACTIVITY_TIMEOUT = timedelta(seconds=30)
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
WORKFLOW_TYPE = "TransitionWorkflow"


@workflow.defn(name=WORKFLOW_TYPE)
class TransitionWorkflow:
    """Runs a pinned protocol: each step waits for a care manager's completion (an Update),
    is marked overdue at its due time, and every change is written to the projection."""

    @workflow.init
    def __init__(self, input: TransitionInput) -> None:
        self._input = input
        self._plan: TransitionPlan | None = None
        self._steps: dict[str, StepState] = {}
        self._status = TransitionStatus.ACTIVE
        self._version = 0
        self._changed = False
        self._publish_lock = asyncio.Lock()

    @workflow.run
    async def run(self, input: TransitionInput) -> TransitionState:
        self._plan = await workflow.execute_activity(
            "plan_transition",
            PlanRequest(discharged_at=input.discharged_at, protocol=input.protocol),
            result_type=TransitionPlan,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        self._steps = {
            step.step_id: StepState(
                step_id=step.step_id,
                title=step.title,
                kind=step.kind,
                owner_role=step.owner_role,
                due_at=step.due_at,
            )
            for step in self._plan.steps
        }
        await self._publish()

        while self._open_steps():
            self._changed = False
            pending = self._next_deadline()
            if pending is None:
                await workflow.wait_condition(lambda: self._changed)
            elif pending > workflow.now():
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self._changed,
                        timeout=pending - workflow.now(),
                        timeout_summary="next step due",
                    )
            if self._mark_overdue():
                await self._publish()

        self._status = TransitionStatus.COMPLETED
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._publish()
        return self.get_state()

    @workflow.query
    def get_state(self) -> TransitionState:
        return TransitionState(
            transition_id=self._input.transition_id,
            facility=self._input.facility,
            status=self._status,
            protocol_id=self._input.protocol.id,
            protocol_version=self._input.protocol.version,
            discharged_at=self._input.discharged_at,
            timezone=self._plan.timezone if self._plan else None,
            steps=[step.model_copy() for step in self._steps.values()],
            version=self._version,
        )

    @workflow.update
    async def complete_step(self, request: CompleteStepRequest) -> StepState:
        # An update can arrive while the plan activity is still running.
        await workflow.wait_condition(lambda: self._plan is not None)
        step = self._steps[request.step_id]
        if not step.is_open:  # a concurrent update won the race while this one waited
            raise ApplicationError(
                f"step {request.step_id!r} is already {step.status.value}", type="StepNotOpen"
            )
        step.status = StepStatus.COMPLETED
        step.completed_at = workflow.now()
        step.completed_by = request.by
        step.outcome = request.outcome
        step.note = request.note
        self._changed = True
        await self._publish()
        return step.model_copy()

    @complete_step.validator
    def validate_complete_step(self, request: CompleteStepRequest) -> None:
        known = [rule.id for rule in self._input.protocol.steps]
        if request.step_id not in known:
            raise ValueError(f"unknown step {request.step_id!r}; steps are: {', '.join(known)}")
        step = self._steps.get(request.step_id)
        if step is not None and not step.is_open:
            raise ValueError(f"step {request.step_id!r} is already {step.status.value}")

    def _open_steps(self) -> list[StepState]:
        return [step for step in self._steps.values() if step.is_open]

    def _next_deadline(self) -> datetime | None:
        """The earliest due time of an open step not yet marked overdue."""
        due = [s.due_at for s in self._open_steps() if s.overdue_since is None]
        return min(due) if due else None

    def _mark_overdue(self) -> bool:
        now = workflow.now()
        changed = False
        for step in self._open_steps():
            if step.overdue_since is None and step.due_at <= now:
                step.overdue_since = now
                changed = True
        return changed

    def _projection(self) -> ProjectionRecord:
        open_steps = sorted(self._open_steps(), key=lambda s: s.due_at)
        return ProjectionRecord(
            transition_id=self._input.transition_id,
            encounter_key=self._input.encounter_key,
            facility=self._input.facility,
            protocol_id=self._input.protocol.id,
            protocol_version=self._input.protocol.version,
            status=self._status,
            discharged_at=self._input.discharged_at,
            current_step=open_steps[0].step_id if open_steps else None,
            next_due_at=open_steps[0].due_at if open_steps else None,
            overdue_steps=tuple(s.step_id for s in open_steps if s.overdue_since is not None),
            version=self._version,
        )

    async def _publish(self) -> None:
        """Bump the version, update search attributes and write the projection row."""
        async with self._publish_lock:
            self._version += 1
            record = self._projection()
            workflow.upsert_search_attributes(
                [
                    search_attributes.STATUS.value_set(record.status.value),
                    search_attributes.NEXT_DUE_AT.value_set(record.next_due_at)
                    if record.next_due_at
                    else search_attributes.NEXT_DUE_AT.value_unset(),
                    search_attributes.OVERDUE_STEPS.value_set(list(record.overdue_steps)),
                ]
            )
            await workflow.execute_activity(
                "record_transition",
                record,
                result_type=bool,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
