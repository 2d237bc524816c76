"""The state every part of TransitionWorkflow shares, set from the workflow input before any
handler runs, and the timeline: each change appends an event that the next projection write
carries (transition_publishing.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.call import CallRecord
    from schemas.protocol import StepRule
    from schemas.social_needs import Referral, Screening
    from schemas.transition import (
        Note,
        StepState,
        StepStatus,
        TimelineEvent,
        TransitionInput,
        TransitionOutcome,
        TransitionPlan,
        TransitionStatus,
        UndeliveredNotice,
    )

from workflows.transition_activities import LOCAL_ACTIVITIES_PATCH

# One task owns each step: a readmission withdrawn while the step's task is still alive
# (an A01 and its A11 in one activation, or before the plan) no longer starts a second one.
# A cancelled prerequisite stops the steps that wait for it. The closing publish comes
# before the last wait for handlers, and a closed transition takes no note.
OWNED_STEPS_PATCH = "owned-steps-v1"
# Publishes asked for while one waits for its turn share it: one projection write for the
# steps that escalate in one instant, not one each (fewer local activities per deadline).
# Histories recorded before this patch keep one write per publish.
COALESCED_PUBLISH_PATCH = "coalesced-publish-v1"
# One marker for every patch before it: a transition started since runs their new code
# without asking each. Every patch marker also makes the SDK upsert TemporalChangeVersion (a
# history event and a visibility write): a new transition recorded four of each before.
# Histories without this marker ask each patch as they did. A patch added after it is asked
# with workflow.patched itself, never through _patched.
BASELINE_PATCH = "baseline-v1"
BASELINE_COVERS = frozenset(
    {
        "owned-steps-v1",
        "coalesced-publish-v1",
        "late-arrival-v1",
        "local-activities-v1",
        "decisive-messages-v1",
        "feed-events-v1",
        "ordered-updates-v1",
        "a08-profile-phones-v1",
        "cancel-order-v1",
    }
)
GENERATION_STRIDE = 1_000_000


class TransitionBase:
    """The fields of one transition. The step runner, the Updates, the signals and
    publishing are mixins over this class (see TransitionWorkflow)."""

    def __init__(self, input: TransitionInput) -> None:
        # Asked first, before any other patch, handler or activity (see BASELINE_PATCH).
        self._baseline = workflow.patched(BASELINE_PATCH)
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
                tcm_element=rule.tcm_element,
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
        # Asked here, before any handler or activity can run (see LATE_ARRIVAL_PATCH in
        # TransitionWorkflow.run).
        self._owned_steps = self._patched(OWNED_STEPS_PATCH)
        self._patient_key = input.patient_key
        self._contact_numbers: list[str] = []
        self._information_at: datetime | None = None  # event time of the last A08 applied
        self._notes: list[Note] = []
        self._calls: list[CallRecord] = []
        self._owner: str | None = None  # the care manager the transition is assigned to
        self._owner_since: datetime | None = None
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
        # Asked here too, before any handler or activity can run (see COALESCED_PUBLISH_PATCH).
        self._coalesced_publishes = self._patched(COALESCED_PUBLISH_PATCH)
        self._pending_publish: asyncio.Task[None] | None = None
        self._in_app_deliveries = 0  # worklist notices in flight (local activities)
        self._projection_stale = False
        self._repair: asyncio.Task[None] | None = None

    def _patched(self, patch_id: str) -> bool:
        """workflow.patched(patch_id) for a patch BASELINE_PATCH covers: true without a marker
        of its own in a transition that took the baseline."""
        if patch_id not in BASELINE_COVERS:
            raise ValueError(f"{patch_id} is not covered by {BASELINE_PATCH}")
        return self._baseline or workflow.patched(patch_id)

    @property
    def _local_activities(self) -> bool:
        """Whether carebridge's own activities run as local activities (asked each time, as
        LOCAL_ACTIVITIES_PATCH was: a transition older than it takes it at its next one)."""
        return self._patched(LOCAL_ACTIVITIES_PATCH)

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
