"""What an accepted ADT event does: pick a protocol, assess risk and start a transition
(A03), signal the visit's running transition (A08/A11/A13), or record it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ingest import keys, risk
from ingest.protocol_library import ProtocolLibrary, Selection
from schemas.adt import AdtEvent
from schemas.protocol import Protocol
from schemas.risk import RiskAssessment
from schemas.transition import AdtSignal, TransitionInput, TransitionStatus
from store import encounters
from workflows import search_attributes
from workflows.transition import TransitionWorkflow

log = structlog.get_logger(__name__)

# Later events for the same visit, delivered to its running transition.
SIGNALLED_EVENTS = frozenset({"A08", "A11", "A13"})


@dataclass(frozen=True)
class Routed:
    """The inbox status and ACK text for an event, and the transition it touched."""

    status: str
    text: str
    transition_id: str | None = None
    started: bool = False


class AdtRouter:
    def __init__(
        self,
        pool: asyncpg.Pool | None,
        client: Client | None,
        *,
        library: ProtocolLibrary,
        key_secret: str,
        task_queue: str,
    ) -> None:
        self.library = library
        self._pool = pool
        self._client = client
        self._key_secret = key_secret
        self._task_queue = task_queue

    def patient_key(self, event: AdtEvent) -> str:
        """The MR identifier if there is one, else the first PID-3 repetition ('' if none)."""
        ids = event.patient_identifiers
        chosen = next((i for i in ids if i.type_code == "MR"), ids[0] if ids else None)
        if chosen is None:
            return ""
        return keys.patient_key(self._key_secret, chosen.assigning_authority, chosen.id)

    def encounter_key(self, event: AdtEvent) -> str:
        return keys.encounter_key(self._key_secret, event.facility, event.visit_number)

    async def assess_risk(self, event: AdtEvent) -> RiskAssessment:
        """LACE from the message and, when a store is connected, the ED-visit history."""
        assert event.discharged_at is not None
        site = self.library.site
        patient = self.patient_key(event)
        ed_visits = None
        if self._pool is not None and patient:
            ed_visits = await encounters.count_ed_visits_before(
                self._pool,
                patient_key=patient,
                before=event.admitted_at or event.discharged_at,
                excluding_encounter=self.encounter_key(event),
            )
        return risk.lace(
            admitted_at=event.admitted_at,
            discharged_at=event.discharged_at,
            admission_type=event.admission_type,
            acute_admission_types=site.acute_admission_types,
            diagnosis_codes=event.diagnosis_codes,
            ed_visits=ed_visits,
            high_risk_threshold=site.high_risk_lace,
        )

    async def transition_input(self, event: AdtEvent, protocol: Protocol) -> TransitionInput:
        assert event.discharged_at is not None  # the mapping guarantees it for A03
        encounter = self.encounter_key(event)
        site = self.library.site
        return TransitionInput(
            transition_id=keys.transition_id(encounter),
            encounter_key=encounter,
            facility=event.facility,
            discharged_at=event.discharged_at,
            admitted_at=event.admitted_at,
            patient_class=event.patient_class,
            discharge_disposition=event.discharge_disposition,
            message_control_id=event.header.control_id,
            patient_key=self.patient_key(event),
            protocol=protocol,
            risk=await self.assess_risk(event),
            calendar=site.calendar,
            policy=site.policy,
        )

    def select(self, event: AdtEvent) -> Selection:
        return self.library.select(event)

    async def route(self, event: AdtEvent, fallback_time: datetime) -> Routed:
        assert self._pool is not None and self._client is not None
        patient = self.patient_key(event)
        if event.patient_class == "E" and patient:
            await encounters.record_ed_visit(
                self._pool,
                patient_key=patient,
                encounter_key=self.encounter_key(event),
                facility=event.facility,
                at=event.admitted_at or event.occurred_at or fallback_time,
            )
        if event.event_type in SIGNALLED_EVENTS:
            return await self._signal(event, fallback_time)
        if event.event_type != "A03":
            return Routed("ignored", f"stored; no action for {event.event_type} yet")
        selection = self.select(event)
        if selection.protocol is None:
            log.info("adt.no_protocol", reason=selection.reason)
            return Routed("no_protocol", selection.reason)
        return await self._start(event, selection.protocol)

    async def _start(self, event: AdtEvent, protocol: Protocol) -> Routed:
        assert self._client is not None
        workflow_input = await self.transition_input(event, protocol)
        transition = workflow_input.transition_id
        structlog.contextvars.bind_contextvars(
            transition_id=transition, workflow_id=keys.workflow_id(transition)
        )
        try:
            await self._client.start_workflow(
                TransitionWorkflow.run,
                workflow_input,
                id=keys.workflow_id(transition),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(
                            search_attributes.STATUS, TransitionStatus.ACTIVE.value
                        ),
                        SearchAttributePair(search_attributes.PROTOCOL, protocol.id),
                        SearchAttributePair(search_attributes.FACILITY, event.facility),
                    ]
                ),
            )
        except WorkflowAlreadyStartedError:
            log.info("transition.duplicate_discharge")
            return Routed("duplicate", "transition already exists", transition)
        log.info("transition.started", protocol=protocol.id, risk=workflow_input.risk.tier)
        return Routed("processed", f"transition started ({protocol.id})", transition, True)

    async def _signal(self, event: AdtEvent, fallback_time: datetime) -> Routed:
        assert self._client is not None
        transition = keys.transition_id(self.encounter_key(event))
        signal = AdtSignal(
            event_type=event.event_type,
            message_control_id=event.header.control_id,
            occurred_at=event.occurred_at or fallback_time,
            patient_class=event.patient_class,
            deceased=event.death_indicator,
            contact_numbers=event.contact_numbers or None,
        )
        handle = self._client.get_workflow_handle(keys.workflow_id(transition))
        try:
            await handle.signal(TransitionWorkflow.adt_event, signal)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            return Routed("ignored", f"no running transition for this visit ({event.event_type})")
        return Routed("processed", f"{event.event_type} delivered to the transition", transition)
