"""What an accepted ADT event does: check attribution, pick a protocol, assess risk and start
a transition (A03), signal the visit's running transition (A08/A11/A13), merge patients
(A34/A36/A39/A40/A47), or record it. A patient key is always resolved through the aliases
that merges leave, so a late message under a merged-away identifier reaches the survivor.
Every event with a PID also updates the patient registry (store/registry.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

import asyncpg
import structlog
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ingest import er7, feed_routing, mapping, risk
from ingest.errors import HL7Error
from ingest.mapping import ACCOUNT_MERGES, PATIENT_MERGES
from schemas import keys
from schemas.adt import FACILITY_DISPOSITIONS, AdtEvent, PatientIdentifier
from schemas.person import Caregiver, PersonProfile
from schemas.protocol import Protocol
from schemas.protocol_library import ProtocolLibrary, Selection
from schemas.risk import RiskAssessment
from schemas.site import Attribution
from schemas.transition import AdtSignal, TransitionInput, TransitionState, TransitionStatus
from store import aliases, care_teams, encounters, inbox, registry, roster, visit_events
from store.encryption import BlindIndex, FieldCipher
from store.visit_events import Outcome, PendingEvent
from workflows import search_attributes
from workflows.transition import TransitionWorkflow

log = structlog.get_logger(__name__)

# Later events for the same visit, delivered to its running transition (A12, cancel
# transfer, carries the location the patient is back in). One that arrives before the
# discharge has started the transition is kept and applied when it starts.
VISIT_SIGNALS = frozenset({"A02", "A07", "A08", "A12", "A13"})
# An arrival at a practice clinic the site lists (site.yaml feed.practice_clinics), other than
# as an inpatient: the patient at the follow-up visit (ingest/feed_routing.py).
CLINIC_VISITS = frozenset({"A01", "A04"})
KEPT_OUTCOMES = {
    Outcome.DELIVERED: "delivered",
    Outcome.OLDER: "older than the discharge",
    Outcome.EXPIRED: "expired",
    Outcome.CLOSED: "transition closed",
    Outcome.UNREADABLE: "unreadable",
}


def is_admission(event: AdtEvent) -> bool:
    """An inpatient admission: A01/A06 (not an ED visit), or A04 registering an inpatient.
    (An A04 for an ED or outpatient visit is not a readmission; an ED visit counts for LACE.)"""
    if event.event_type in ("A01", "A06"):
        return event.patient_class != "E"
    return event.event_type == "A04" and event.patient_class == "I"


def _fits(value: str, limit: int) -> str:
    """A value the profile cannot hold is dropped, not cut: a cut phone number is wrong."""
    return value if len(value) <= limit else ""


def person_profile(event: AdtEvent) -> PersonProfile:
    """Language, numbers and caregivers (NK1 with a name) from the ADT. The ADT carries no
    consent, so no caregiver may be contacted until a care manager records it."""
    caregivers = tuple(
        Caregiver(
            name=kin.name[:120],
            relationship=_fits(kin.relationship, 40),
            phone=_fits(kin.phone, 25),
        )
        for kin in event.next_of_kin
        if kin.name
    )
    facility = event.discharged_to if event.discharge_disposition in FACILITY_DISPOSITIONS else ""
    return PersonProfile(
        language=_fits(event.language, 60),
        phones=event.contact_numbers,
        caregivers=caregivers,
        discharged_to=_fits(facility, 120),
    )


@dataclass(frozen=True)
class Unmatched:
    """A patient identifier field none of whose repetitions the site's rule names."""

    field: str  # PID-3 or MRG-1
    text: str


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
        field_cipher: FieldCipher | None = None,
        blind_index: BlindIndex | None = None,
    ) -> None:
        """Without a cipher and blind index (a plan, a unit test) the patient registry is
        not written; the cipher also opens the inbox's sealed messages (a kept visit event is
        read again)."""
        self.library = library
        self._pool = pool
        self._client = client
        self._key_secret = key_secret
        self._task_queue = task_queue
        self._cipher = field_cipher
        self._index = blind_index

    def _matching(self, identifiers: tuple[PatientIdentifier, ...]) -> PatientIdentifier | None:
        """The first identifier the site's rule (assigning authority / type) names."""
        rule = self.library.site.patient_identifier
        return next(
            (
                i
                for i in identifiers
                if (
                    not rule.assigning_authorities
                    or i.assigning_authority in rule.assigning_authorities
                )
                and (not rule.type_codes or i.type_code in rule.type_codes)
            ),
            None,
        )

    def _key_of(self, identifiers: tuple[PatientIdentifier, ...]) -> str:
        """The site's identifier of choice, else the first (the intake records that choice:
        see `unmatched_identifier`)."""
        chosen = self._matching(identifiers) or (identifiers[0] if identifiers else None)
        if chosen is None:
            return ""
        return keys.patient_key(self._key_secret, chosen.assigning_authority, chosen.id)

    def unmatched_identifier(self, event: AdtEvent) -> Unmatched | None:
        """Why the patient key is not the site's identifier of choice, or None when it is
        (or when there is no PID-3 at all). Never silent: readmission and roster matching
        depend on which identifier keys the patient."""
        fields = [("PID-3", event.patient_identifiers), ("MRG-1", event.merged_identifiers)]
        for group in event.merges[1:]:  # every PID/MRG group of a merge keys a patient
            fields += [("PID-3", group.surviving), ("MRG-1", group.merged)]
        for name, identifiers in fields:
            if identifiers and self._matching(identifiers) is None:
                rule = self.library.site.patient_identifier
                wanted = ", ".join(
                    part
                    for part in (
                        "type " + "/".join(rule.type_codes) if rule.type_codes else "",
                        "authority " + "/".join(rule.assigning_authorities)
                        if rule.assigning_authorities
                        else "",
                    )
                    if part
                )
                return Unmatched(
                    name, f"no {name} repetition matches the site's patient_identifier ({wanted})"
                )
        return None

    async def patient_key(self, event: AdtEvent) -> str:
        """The key of the event's patient: its PID-3 key, or the key that patient was merged
        into (an A03 or A01 sent later under a merged-away identifier lands on the survivor)."""
        return await self._resolved(self._key_of(event.patient_identifiers))

    async def _resolved(self, patient_key: str) -> str:
        if self._pool is None or not patient_key:
            return patient_key
        return await aliases.resolve(self._pool, patient_key)

    def encounter_key(self, event: AdtEvent) -> str:
        """By facility and visit number; an event without a visit number is an encounter of
        its own, keyed by patient and event time (a retransmission keys the same)."""
        visit = event.visit_number
        if not visit:
            at = event.occurred_at.isoformat() if event.occurred_at else event.header.control_id
            patient = self._key_of(event.patient_identifiers)  # as sent: stable across merges
            visit = f"\x1fno-visit\x1f{patient}\x1f{at}"
        return keys.encounter_key(self._key_secret, event.facility, visit)

    async def assess_risk(self, event: AdtEvent, patient: str | None = None) -> RiskAssessment:
        """LACE from the message and, when a store is connected, the ED-visit history."""
        assert event.discharged_at is not None
        site = self.library.site
        if patient is None:
            patient = await self.patient_key(event)
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
            zone=site.zone_for(event.facility),
            admission_type=event.admission_type,
            acute_admission_types=site.acute_admission_types,
            diagnosis_codes=event.diagnosis_codes,
            ed_visits=ed_visits,
            high_risk_threshold=site.high_risk_lace,
        )

    async def transition_input(
        self,
        event: AdtEvent,
        protocol: Protocol,
        received_at: datetime | None = None,
        patient: str | None = None,
    ) -> TransitionInput:
        assert event.discharged_at is not None  # the mapping guarantees it for A03
        encounter = self.encounter_key(event)
        site = self.library.site
        if patient is None:
            patient = await self.patient_key(event)
        return TransitionInput(
            received_at=received_at,
            transition_id=keys.transition_id(encounter),
            encounter_key=encounter,
            facility=event.facility,
            discharged_at=event.discharged_at,
            admitted_at=event.admitted_at,
            patient_class=event.patient_class,
            discharge_disposition=event.discharge_disposition,
            message_control_id=event.header.control_id,
            patient_key=patient,
            protocol=protocol,
            risk=await self.assess_risk(event, patient),
            calendar=site.calendar_for(event.facility),
            policy=site.policy,
            profile=person_profile(event),
            channel_transports=dict(site.notifications.channels),
        )

    def select(self, event: AdtEvent) -> Selection:
        return self.library.select(event)

    def too_old(self, event: AdtEvent, protocol: Protocol, received_at: datetime) -> str | None:
        """Why a discharge that arrives this late starts no transition, or None: its
        transition period has ended (or the site's `late_discharges` limit has passed)."""
        assert event.discharged_at is not None
        site = self.library.site
        calendar = site.calendar_for(event.facility)
        limit_days = site.late_discharges.too_old_after_days
        if limit_days is None:
            ended = calendar.period_end(event.discharged_at, protocol.period_days)
            if ended < received_at:
                return f"too old: the transition period ended {ended.date().isoformat()}"
            return None
        if received_at - event.discharged_at > timedelta(days=limit_days):
            discharged = event.discharged_at.astimezone(calendar.zone()).date().isoformat()
            return (
                f"too old: discharged {discharged}, more than the site's {limit_days} days "
                "before it arrived"
            )
        return None

    async def not_attributed(self, event: AdtEvent, patient: str | None = None) -> str | None:
        """Why this discharge is not ours under the site's attribution rule, or None.
        The roster is read here, at A03 time only: its changes never reach running transitions."""
        site = self.library.site
        rule = site.attribution
        if rule == Attribution.ALL:
            return None
        if rule == Attribution.PCP and set(event.pcp_ids) & set(site.attributed_pcp_ids):
            return None
        assert self._pool is not None
        if patient is None:
            patient = await self.patient_key(event)
        entry = await self._roster_entry(event, patient)
        if rule == Attribution.ROSTER:
            return None if entry is not None else "not attributed: roster (no roster match)"
        if entry is not None and entry.pcp_id and entry.pcp_id in site.attributed_pcp_ids:
            return None
        return "not attributed: pcp (PCP not attributed)"

    async def _roster_entry(self, event: AdtEvent, patient: str) -> roster.RosterRecord | None:
        """The roster row of the surviving patient, else of the identifier as sent (a roster
        loaded before a merge still names the merged-away one)."""
        assert self._pool is not None
        sent = self._key_of(event.patient_identifiers)
        for key in dict.fromkeys(k for k in (patient, sent) if k):
            if (entry := await roster.lookup(self._pool, key)) is not None:
                return entry
        return None

    async def care_team(self, event: AdtEvent, patient: str) -> tuple[str, str]:
        """The transition's care team and what decided it (site.yaml care_teams): the
        roster's practice, else a listed PCP (the roster row's, then the message's)."""
        entry = await self._roster_entry(event, patient)
        pcps = [entry.pcp_id] if entry is not None and entry.pcp_id else []
        return self.library.site.care_teams.team_for(
            practice=entry.practice if entry is not None else "",
            pcp_ids=[*pcps, *event.pcp_ids],
            facility=event.facility,
        )

    async def route(
        self, event: AdtEvent, received_at: datetime, *, inbox_id: int | None = None
    ) -> Routed:
        """The routing table (README): every event is recorded; these ones act. `inbox_id`
        is the message's inbox row (found by its MSH fields when not given). Then the
        patient registry takes what the event says about its patient (and about the visit's
        transition, for a discharge and the updates delivered to it): a failure to write it
        fails the message like any database failure (not AA, the sender resends)."""
        patient = await self.patient_key(event)
        if event.header.message_type != "ADT":  # SIU, MDM, ORU: the feed's other messages
            return await self._feed(event, received_at, patient, inbox_id)
        routed = await self._route(event, received_at, patient, inbox_id)
        await self._register(event, received_at, patient, self._own_transition(event, routed))
        return routed

    async def _feed(
        self, event: AdtEvent, received_at: datetime, patient: str, inbox_id: int | None
    ) -> Routed:
        """SIU, MDM and ORU (ingest/feed_routing.py). Their PID does not update the registry: the
        ADT feed is the source of the patient's demographics."""
        assert self._pool is not None
        at = event.occurred_at or received_at
        window = self.library.site.readmission_window_days
        if event.header.message_type == "SIU":
            signal = self._signal_of(
                event,
                at,
                appointment=event.appointment,
                inbox_id=inbox_id,
                feed=True,
                message_type="SIU",
            )
            found = await feed_routing.scheduling(
                self._pool, self._send, event, patient, signal, window
            )
        else:
            written = event.document.at if event.document and event.document.at else at
            signal = self._signal_of(
                event,
                written,
                inbox_id=inbox_id,
                feed=True,
                message_type=event.header.message_type,
                document_type=event.document.type if event.document else None,
            )
            transition = keys.transition_id(self.encounter_key(event))
            found = await feed_routing.document(
                self._pool,
                self._send,
                event,
                transition,
                signal,
                self.library.site.feed,
                inbox_id,
                received_at=received_at,
            )
        return Routed(found.status, found.text, found.transition_id)

    def _declared_visit_location(self, event: AdtEvent) -> bool:
        """Some protocol step declares this ADT at this point of care (its `events`
        locations): the router sends it to the patient's transition, which decides."""
        point_of_care = event.location.split("^")[0]
        if not point_of_care:
            return False
        return any(
            rule.message == "ADT"
            and event.event_type in rule.triggers
            and any(fnmatchcase(point_of_care, pattern) for pattern in rule.locations)
            for versions in self.library.versions.values()
            for protocol in versions.values()
            for step in protocol.steps
            for rule in step.feed_events()
        )

    async def _clinic_visit(
        self,
        event: AdtEvent,
        at: datetime,
        patient: str,
        clinic: str | None,
        inbox_id: int | None,
    ) -> Routed:
        """An A04 (or A01) at a practice clinic (or a location a step declares): for the
        patient's open transition, whose steps decide, on its arrival time."""
        assert self._pool is not None
        arrived = event.admitted_at or at
        signal = self._signal_of(
            event,
            arrived,
            clinic=clinic,
            inbox_id=inbox_id,
            feed=True,
            confirm=self.library.site.feed.confirm_visits,
        )
        found = await feed_routing.clinic_visit(
            self._pool,
            self._send,
            event,
            patient,
            signal,
            self.library.site.readmission_window_days,
        )
        return Routed(found.status, found.text, found.transition_id)

    def _own_transition(self, event: AdtEvent, routed: Routed) -> str | None:
        """The transition of the event's own visit, when the event is its discharge or an
        update delivered to it (a readmission's Routed names an earlier visit's)."""
        if not event.visit_number or event.event_type not in ("A03", *VISIT_SIGNALS):
            return None
        own = keys.transition_id(self.encounter_key(event))
        return own if routed.transition_id == own else None

    async def _register(
        self, event: AdtEvent, received_at: datetime, patient: str, transition: str | None
    ) -> None:
        if self._pool is None or self._cipher is None or self._index is None or not patient:
            return
        if event.occurred_at is None:  # the routing's event time: when it arrived
            event = event.model_copy(update={"occurred_at": received_at})
        await registry.record_event(
            self._pool,
            self._cipher,
            self._index,
            patient_key=patient,
            event=event,
            transition_id=transition,
            at=received_at,
        )

    async def _route(
        self, event: AdtEvent, received_at: datetime, patient: str, inbox_id: int | None
    ) -> Routed:
        assert self._pool is not None
        at = event.occurred_at or received_at
        kind = event.event_type
        if kind in CLINIC_VISITS and event.patient_class != "I":
            clinic = self.library.site.feed.clinic_at(event.facility, event.location)
            if clinic is not None or self._declared_visit_location(event):
                where = clinic.location if clinic is not None else None
                return await self._clinic_visit(event, at, patient, where, inbox_id)
        if patient:
            if event.patient_class == "E":
                await self._record(event, patient, encounters.ED_VISIT, event.admitted_at or at)
            if is_admission(event):
                await self._record(event, patient, encounters.ADMISSION, event.admitted_at or at)
        if kind == "A03":
            if reason := await self.not_attributed(event, patient):
                log.info("adt.not_attributed", rule=self.library.site.attribution.value)
                return Routed("ignored", reason)
            selection = self.select(event)
            if selection.protocol is None:
                log.info("adt.no_protocol", reason=selection.reason)
                return Routed("no_protocol", selection.reason)
            if reason := self.too_old(event, selection.protocol, received_at):
                log.info("adt.too_old")
                return Routed("too_old", reason)
            return await self._start(event, selection.protocol, received_at, patient)
        if is_admission(event):
            return await self._readmission(event, patient, event.admitted_at or at)
        if not event.visit_number and (kind == "A11" or kind in VISIT_SIGNALS):
            return Routed("ignored", f"recorded; {kind} has no visit number, so no transition")
        if kind == "A11":
            return await self._cancel_admit(event, patient, at)
        if kind in VISIT_SIGNALS:
            return await self._signal_visit(event, at, received_at, inbox_id)
        if kind in PATIENT_MERGES:
            return await self._merge(event, at, received_at)
        if kind in ACCOUNT_MERGES:
            return Routed("ignored", f"recorded; {kind}: {self._account_merge_note()}")
        return Routed("ignored", f"recorded; {kind} has no effect on transitions")

    async def _record(self, event: AdtEvent, patient: str, kind: str, at: datetime) -> None:
        assert self._pool is not None
        await encounters.record(
            self._pool,
            patient_key=patient,
            encounter_key=self.encounter_key(event),
            kind=kind,
            facility=event.facility,
            at=at,
        )

    def _signal_of(self, event: AdtEvent, at: datetime, **fields: object) -> AdtSignal:
        return AdtSignal(
            event_type=event.event_type,
            message_control_id=event.header.control_id,
            occurred_at=at,
            patient_class=event.patient_class,
            deceased=event.death_indicator,
            contact_numbers=() if event.contact_numbers_cleared else event.contact_numbers or None,
            location=event.location or None,
            **fields,
        )

    async def _send(self, transition: str, signal: AdtSignal) -> bool:
        """Signal a transition; False when it is not running (closed or never started)."""
        assert self._client is not None
        handle = self._client.get_workflow_handle(keys.workflow_id(transition))
        try:
            await handle.signal(TransitionWorkflow.adt_event, signal)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            return False
        return True

    async def _signal_visit(
        self, event: AdtEvent, at: datetime, received_at: datetime, inbox_id: int | None
    ) -> Routed:
        """A13/A08/A02/A07/A12 for a visit reach that visit's running transition; before the
        discharge has started it, they are kept until it does."""
        transition = keys.transition_id(self.encounter_key(event))
        if await self._send(transition, self._signal_of(event, at)):
            return Routed(
                "processed", f"{event.event_type} delivered to the transition", transition
            )
        if await self._keep(event, at, received_at, transition, inbox_id):
            hours = self.library.site.pending_visit_events_hours
            return Routed(
                "pending",
                f"no transition for this visit yet: kept for {hours} hours and applied when "
                "the discharge arrives",
            )
        return Routed("ignored", f"no running transition for this visit ({event.event_type})")

    async def _keep(
        self,
        event: AdtEvent,
        at: datetime,
        received_at: datetime,
        transition: str,
        inbox_id: int | None,
    ) -> bool:
        """Keep a visit event whose discharge may still come: no transition of the visit
        has started (or its record is past Temporal's retention), or the last one was
        cancelled (an A13: a discharge again starts a new generation). False when it ended
        otherwise (completed, deceased) or the inbox row cannot be found."""
        assert self._pool is not None
        if not await self._awaits_discharge(transition):
            return False
        if inbox_id is None:  # a router not told the message's row (plan, tests) keeps nothing
            return False
        await visit_events.keep(
            self._pool,
            inbox_id=inbox_id,
            encounter_key=self.encounter_key(event),
            event_type=event.event_type,
            occurred_at=at,
            received_at=received_at,
        )
        log.info("adt.kept_for_discharge", inbox_id=inbox_id)
        return True

    async def _awaits_discharge(self, transition: str) -> bool:
        """None of the visit's transitions ran yet, or the last one was cancelled."""
        try:
            return await self._cancelled_run(transition) is not None
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            return True

    async def _apply_kept(self, discharge: AdtEvent, transition: str, received_at: datetime) -> str:
        """Apply the visit events kept for the discharge's encounter, in event-time order,
        now that its transition runs: one not older than the discharge is delivered (a
        kept A13 cancels the new transition), an older one is recorded as not applied, and
        one kept longer than the site's window as expired. Each is settled, so a later
        generation never sees it again. Returns a note for the discharge's ACK."""
        assert self._pool is not None
        kept = await visit_events.waiting(self._pool, self.encounter_key(discharge))
        if not kept:
            return ""
        discharged = discharge.occurred_at or received_at
        outcomes = Counter(
            [
                await self._apply_one(pending, transition, discharged, received_at)
                for pending in kept
            ]
        )
        return "; kept events: " + ", ".join(
            f"{count} {KEPT_OUTCOMES[outcome]}" for outcome, count in outcomes.items()
        )

    async def _apply_one(
        self, pending: PendingEvent, transition: str, discharged: datetime, now: datetime
    ) -> Outcome:
        assert self._pool is not None
        outcome, decision = await self._kept_outcome(pending, transition, discharged, now)
        await visit_events.settle(
            self._pool,
            pending.inbox_id,
            outcome=outcome,
            decision=decision,
            transition_id=transition,
            at=now,
        )
        log.info("adt.kept_event_settled", inbox_id=pending.inbox_id, outcome=outcome.value)
        return outcome

    async def _kept_outcome(
        self, pending: PendingEvent, transition: str, discharged: datetime, now: datetime
    ) -> tuple[Outcome, str]:
        """Deliver a kept event unless it expired or happened before the discharge (then it
        would change the transition to an older state): the outcome and the inbox decision."""
        hours = self.library.site.pending_visit_events_hours
        kind = pending.event_type
        if pending.received_at < now - timedelta(hours=hours):
            return (
                Outcome.EXPIRED,
                f"kept {hours} hours without its discharge: expired, not applied",
            )
        if pending.occurred_at < discharged:
            return Outcome.OLDER, "older than the discharge: not applied"
        event = await self._kept_event(pending)
        if event is None:
            return Outcome.UNREADABLE, "kept, but its message no longer maps: not applied"
        if await self._send(transition, self._signal_of(event, pending.occurred_at)):
            patient = await self.patient_key(event)
            await self._register(event, pending.received_at, patient, transition)
            return (
                Outcome.DELIVERED,
                f"{kind} delivered to the transition (kept until the discharge arrived)",
            )
        return Outcome.CLOSED, f"{kind} kept: the transition had closed, not applied"

    async def _kept_event(self, pending: PendingEvent) -> AdtEvent | None:
        """A kept message read again from the inbox and mapped as the intake maps it."""
        assert self._pool is not None and self._cipher is not None
        raw = await inbox.read_raw(self._pool, self._cipher, pending.inbox_id)
        if raw is None:  # retention keeps a pending row's bytes: not expected
            return None
        site = self.library.site
        try:
            message = er7.parse(raw, site.character_sets)
            facility = mapping.header(message).facility
            return mapping.to_event(
                message, site.zone_for(facility), visit_sources=site.visit_number_sources
            )
        except HL7Error:
            return None

    async def _readmission(self, event: AdtEvent, patient: str, admitted_at: datetime) -> Routed:
        """A01/A06 (A04 as inpatient): a readmission for transitions in their window."""
        assert self._pool is not None
        if not patient:
            return Routed("ignored", f"{event.event_type}: no patient identifier (PID-3)")
        admission = self.encounter_key(event)
        candidates = await encounters.transitions_in_window(
            self._pool,
            patient_key=patient,
            at=admitted_at,
            excluding_encounter=admission,
            window_days=self.library.site.readmission_window_days,
        )
        signal = self._signal_of(event, admitted_at, encounter_key=admission)
        reached = [t for t in candidates if await self._send(t, signal)]
        if not reached:
            return Routed("ignored", "admission recorded; no transition in its readmission window")
        return Routed(
            "processed", f"readmission signalled to {len(reached)} transition(s)", reached[0]
        )

    async def _cancel_admit(self, event: AdtEvent, patient: str, at: datetime) -> Routed:
        """A11 withdraws the readmission its admission caused. For a visit already
        discharged it cancels nothing: HL7 chapter 3 orders A13 (cancel the discharge) before
        A11, so the visit's own transition only records it."""
        assert self._pool is not None
        encounter = self.encounter_key(event)
        signal = self._signal_of(event, at, encounter_key=encounter)
        own = keys.transition_id(encounter)
        if await self._send(own, signal):
            return Routed(
                "processed",
                "A11 recorded on the visit's transition; it stays open (an A11 after the "
                "discharge needs an A13 first)",
                own,
            )
        affected = []
        if patient:
            for transition in await encounters.transitions_of_patient(self._pool, patient):
                if transition != own and await self._send(transition, signal):
                    affected.append(transition)
        if affected:
            return Routed("processed", f"A11 sent to {len(affected)} transition(s)", affected[0])
        return Routed("ignored", "A11 recorded; no running transition concerned")

    async def _merge(self, event: AdtEvent, at: datetime, received_at: datetime) -> Routed:
        """Each PID/MRG group: the MRG-1 patient's encounters move to the PID-3 patient (to
        the key that one survives in, when it was merged away itself) and the MRG-1 key
        becomes an alias of it; then the running transitions concerned are re-keyed."""
        assert self._pool is not None
        kind = event.event_type
        moved = 0
        survivors: list[str] = []
        for group in event.merges:
            source = self._key_of(group.merged)
            target = await self._resolved(self._key_of(group.surviving))
            if source == target:
                continue  # the same patient, or one already merged into this one
            moved += await encounters.merge_patient(
                self._pool, source=source, target=target, event_type=kind, at=received_at
            )
            if self._cipher is not None and self._index is not None:
                await registry.merge(
                    self._pool,
                    self._cipher,
                    self._index,
                    merged_key=source,
                    surviving_key=target,
                    at=received_at,
                )
            survivors.append(target)
        if not survivors:
            return Routed(
                "ignored",
                f"{kind} merges a patient into itself (or into one merged into it): no change",
            )
        reached = await self._rekey(event, at, survivors)
        text = f"merged: {moved} encounter(s) moved, {len(reached)} running transition(s) re-keyed"
        if len(event.merges) > 1:
            text += f" ({len(event.merges)} PID/MRG groups)"
        if kind in ACCOUNT_MERGES:
            text += f"; {self._account_merge_note()}"
        return Routed("processed", text, reached[0] if reached else None)

    async def _rekey(self, event: AdtEvent, at: datetime, survivors: list[str]) -> list[str]:
        """Signal every running transition of the survivors once, with its patient's final
        key (a later group of the same message may have merged a survivor again, and a
        transition takes one signal per message id)."""
        assert self._pool is not None
        final: dict[str, str] = {}
        for survivor in dict.fromkeys(survivors):
            patient = await self._resolved(survivor)
            for transition in await encounters.transitions_of_patient(self._pool, patient):
                final.setdefault(transition, patient)
        return [
            transition
            for transition, patient in final.items()
            if await self._send(
                transition, self._signal_of(event, at, merged_into_patient_key=patient)
            )
        ]

    def _account_merge_note(self) -> str:
        """An account merge (MRG-3 into PID-18) is recorded: transitions are keyed by the
        visit number, and re-keying a visit (its transition id) is not done."""
        sources = ", ".join(self.library.site.visit_number_sources)
        return f"the account merge (MRG-3) is recorded only: visits are keyed by {sources}"

    async def _start(
        self, event: AdtEvent, protocol: Protocol, received_at: datetime, patient: str
    ) -> Routed:
        assert self._client is not None
        assert self._pool is not None and event.discharged_at is not None
        workflow_input = await self.transition_input(event, protocol, received_at, patient)
        transition = workflow_input.transition_id
        team, decided_by = await self.care_team(event, patient)
        if workflow_input.patient_key:  # before the start: a quick readmission finds it
            await encounters.record_discharge(
                self._pool,
                patient_key=workflow_input.patient_key,
                encounter_key=workflow_input.encounter_key,
                facility=event.facility,
                at=event.discharged_at,
                transition_id=transition,
                team=team,
                decided_by=decided_by,
                decided_at=received_at,
            )
        else:
            await care_teams.assign(self._pool, transition, team, decided_by, received_at)
        structlog.contextvars.bind_contextvars(
            transition_id=transition, workflow_id=keys.workflow_id(transition)
        )
        try:
            await self._start_run(workflow_input, protocol, event.facility)
        except WorkflowAlreadyStartedError:
            previous = await self._cancelled_run(transition)
            if previous is None:
                log.info("transition.duplicate_discharge")
                # kept events a failed first attempt left unapplied are applied now
                kept = await self._apply_kept(event, transition, received_at)
                return Routed("duplicate", f"transition already exists{kept}", transition)
            # Discharged again after a cancelled discharge (A13): a new generation.
            workflow_input = workflow_input.model_copy(
                update={"generation": previous.generation + 1}
            )
            await self._start_run(workflow_input, protocol, event.facility, again=True)
        log.info("transition.started", protocol=protocol.id, risk=workflow_input.risk.tier)
        kept = await self._apply_kept(event, transition, received_at)
        return Routed("processed", f"transition started ({protocol.id}){kept}", transition, True)

    async def _cancelled_run(self, transition: str) -> TransitionState | None:
        """The closed run of this encounter's transition if it ended cancelled, else None."""
        assert self._client is not None
        handle: WorkflowHandle[Any, TransitionState] = self._client.get_workflow_handle(
            keys.workflow_id(transition), result_type=TransitionState
        )
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.COMPLETED:
            return None
        state = await handle.result()
        return state if state.status == TransitionStatus.CANCELLED else None

    async def _start_run(
        self,
        workflow_input: TransitionInput,
        protocol: Protocol,
        facility: str,
        again: bool = False,
    ) -> None:
        assert self._client is not None
        await self._client.start_workflow(
            TransitionWorkflow.run,
            workflow_input,
            id=keys.workflow_id(workflow_input.transition_id),
            task_queue=self._task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE
            if again
            else WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(search_attributes.STATUS, TransitionStatus.ACTIVE.value),
                    SearchAttributePair(search_attributes.PROTOCOL, protocol.id),
                    SearchAttributePair(search_attributes.FACILITY, facility),
                ]
            ),
        )
