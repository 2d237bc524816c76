"""TransitionWorkflow: one discharge, its pinned protocol's timed steps and escalation
ladders, the operator Updates and ADT signals that change it, and its 30-day outcome.

The class is a composition of one module a concern:
    transition_base.py        the state the parts share, and the timeline
    transition_activities.py  how the workflow calls its own activities (timeouts, local)
    transition_publishing.py  the state query, the projection row, the search attributes
    transition_steps.py       the step runner and escalation ladder
    transition_updates.py     the operator Updates and their validators
    transition_calls.py       the outreach call's outcome, mapped onto the steps it informs
    transition_ownership.py   the transition's owner: assigned by a supervisor, or claimed
    transition_signals.py     ADT signals: deaths, cancels, readmission and its withdrawal
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.planning import PlanningActivities
    from schemas.outcome import transition_outcome
    from schemas.transition import PlanRequest, TransitionInput, TransitionState, TransitionStatus

from workflows.transition_activities import internal_activity
from workflows.transition_calls import TransitionCalls
from workflows.transition_ownership import TransitionOwnership
from workflows.transition_signals import TransitionSignals
from workflows.transition_steps import LATE_ARRIVAL_PATCH

__all__ = ["WORKFLOW_TYPE", "TransitionWorkflow"]

WORKFLOW_TYPE = "TransitionWorkflow"


@workflow.defn(name=WORKFLOW_TYPE)
class TransitionWorkflow(TransitionCalls, TransitionOwnership, TransitionSignals):
    """Runs every step of a pinned protocol concurrently: a step waits for its prerequisites,
    then for its completion or its next deadline (`wait_condition` with a timeout), and climbs
    its escalation ladder while it stays open. Operator actions are validated Updates; later
    ADT events are signals. The transition closes at the end of its period (or earlier when
    cancelled or the patient dies) with an outcome summary."""

    @workflow.init
    def __init__(self, input: TransitionInput) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: TransitionInput) -> TransitionState:
        protocol = input.protocol
        # Asked before the first (local) activity: a query that arrives while the plan runs
        # splits the workflow task there, and a patch marker after that split does not replay.
        late_arrivals = self._patched(LATE_ARRIVAL_PATCH)
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

        self._plan = await internal_activity(
            PlanningActivities.plan_transition,
            PlanRequest(
                discharged_at=input.discharged_at,
                protocol=protocol,
                tier=input.risk.tier,
                calendar=input.calendar,
            ),
            local=self._local_activities,
        )
        for schedule in self._plan.steps:
            self._apply_schedule(schedule)
        self._refresh_pending()
        missed = self._missed_before_arrival() if late_arrivals else []
        await self._publish()
        if missed:
            await self._notify_arrived_late(missed)

        self._start_step_tasks()
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
