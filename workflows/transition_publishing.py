"""What a transition shows outside the workflow: the state query, the projection row and its
timeline that lists, pages and reports read (written by the record_transition activity, and
written again while PostgreSQL is away), and the search attributes Temporal lists filter on."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.projection import ProjectionActivities
    from schemas.final_projection import step_summary
    from schemas.transition import (
        ProjectionRecord,
        StepState,
        StepSummary,
        TimelineEvent,
        TransitionState,
        TransitionStatus,
    )
    from workflows import search_attributes

from workflows.transition_activities import (
    GAVE_UP,
    INTERNAL_DEADLINE,
    internal_activity,
)
from workflows.transition_base import TransitionBase

# A row that could not be written by INTERNAL_DEADLINE is stale and written again (every
# write is the whole row) after PROJECTION_REPAIR, doubling up to PROJECTION_REPAIR_MAX,
# until it succeeds, and by any publish meanwhile.
PROJECTION_REPAIR = timedelta(minutes=15)
PROJECTION_REPAIR_MAX = timedelta(hours=4)


class TransitionPublishing(TransitionBase):
    """The state query, the projection write with its repair loop, the search attributes."""

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
            owner=self._owner,
            owner_since=self._owner_since,
            calls=list(self._calls),
        )

    @workflow.signal
    async def republish(self) -> None:
        """Write the projection row again (the consistency sweep found it missing)."""
        await self._publish()

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
            owner=self._owner,
            steps=tuple(self._summary(step) for step in self._steps.values()),
            outcome=self._outcome,
            events=events,
            undelivered=tuple(self._undelivered),
            version=self._version,
        )

    def _summary(self, step: StepState) -> StepSummary:
        element = self._rules[step.step_id].tcm_element
        return step_summary(step, element.value if element else None)

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
        """Bump the version, update search attributes, write the projection and timeline.
        Callers that ask while a write waits for its turn share that write: its row is built
        when its turn comes, after the worklist notices in flight (steps that escalate in one
        instant write one row between them, not one each), so it holds all their changes."""
        if not self._coalesced_publishes:
            async with self._publish_lock:
                await self._write_projection()
            return
        if self._pending_publish is None:
            self._pending_publish = asyncio.create_task(self._publish_in_turn())
        await asyncio.shield(self._pending_publish)

    async def _publish_in_turn(self) -> None:
        async with self._publish_lock:
            # Local activities, so this waits milliseconds (at most their INTERNAL_DEADLINE).
            await workflow.wait_condition(lambda: self._in_app_deliveries == 0)
            self._pending_publish = None  # a change from now on needs a row built after this
            await self._write_projection()

    async def _write_projection(self) -> None:
        """One write of the whole row (the caller holds the publish lock)."""
        self._version += 1
        events = tuple(self._events)
        record = self._projection(events)
        self._upsert_search_attributes(record)
        try:
            await internal_activity(
                ProjectionActivities.record_transition,
                record,
                deadline=INTERNAL_DEADLINE,
                local=self._local_activities,
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
