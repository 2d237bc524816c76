"""Later ADT events of the patient, as signals: each message is handled once (redelivery); a
death or a cancelled discharge closes the transition; an admission within the period stops
outreach (a readmission) and the cancel of that admission resumes it; an A08 updates the
patient's information in event-time order; a transfer moves the location; a merge re-keys
the transition to the surviving patient."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.transition import AdtSignal, StepStatus, TransitionStatus

from workflows.transition_feed import FEED_PATCH, TransitionFeed

READMISSION_EVENTS = frozenset({"A01", "A06"})
CANCEL_EVENTS = frozenset({"A11", "A13"})
READMITTED = "readmitted"
# A redelivered message is handled once: every id is remembered for the last
# SEEN_WINDOW messages, and the ids of messages that change the transition (admissions,
# cancels, deaths, merges: a few per transition) for as long as it runs, up to
# MAX_DECISIVE_MESSAGES. Before this patch an A01 redelivered after 50 later messages
# stopped outreach again even after its readmission had been withdrawn.
REDELIVERY_PATCH = "decisive-messages-v1"
SEEN_WINDOW = 50
MAX_DECISIVE_MESSAGES = 500
# HL7 chapter 3 orders A13 (cancel discharge) before A11 (cancel admit): an A11 of the
# discharged visit itself no longer cancels its transition, it is recorded. Before this
# patch it closed the transition as cancelled. (A12, cancel transfer, was never delivered
# before it, so its location update needs no patch.)
CANCEL_ORDER_PATCH = "cancel-order-v1"
# Messages of a visit can arrive out of order: an A08 whose event time (EVN-6, EVN-2, else
# MSH-7) is older than that of the last A08 applied carries older patient information, and
# is recorded on the timeline as not applied. Before this patch the last A08 to arrive won.
ORDERED_UPDATES_PATCH = "ordered-updates-v1"
# Merges that re-key the transition to the surviving patient: A34, A36, A39, A40 and A47
# (a change of identifier). Only A40 was delivered before; the router answered the others
# "has no effect" and never signalled them, so taking them needs no patch.
MERGE_EVENTS = frozenset({"A34", "A36", "A39", "A40", "A47"})
# An A08's numbers replace the profile's phones too (the care plan, the profile form), not
# only the numbers the call line shows. Before this patch the profile kept the discharge's.
PROFILE_PHONES_PATCH = "a08-profile-phones-v1"
DECISIVE_EVENTS = READMISSION_EVENTS | CANCEL_EVENTS | MERGE_EVENTS | {"A04"}


class TransitionSignals(TransitionFeed):
    """The adt_event signal and what each kind of message does to the transition."""

    @workflow.signal
    async def adt_event(self, signal: AdtSignal) -> None:
        control_id = signal.message_control_id
        if control_id in self._seen_messages:
            return  # a redelivered message: handled once
        if control_id in self._decisive_messages and self._patched(REDELIVERY_PATCH):
            return  # ... also when it comes back after many later ones
        self._seen_messages = [*self._seen_messages[-(SEEN_WINDOW - 1) :], control_id]
        decisive = signal.event_type in DECISIVE_EVENTS or signal.deceased
        if decisive and len(self._decisive_messages) < MAX_DECISIVE_MESSAGES:
            self._decisive_messages.add(control_id)
        kind = signal.event_type
        detail = f"{kind} ({signal.message_control_id})"
        if signal.inbox_id is not None:
            detail = f"{kind} ({signal.message_control_id}, inbox {signal.inbox_id})"
        if self._status != TransitionStatus.ACTIVE:
            self._event("adt_ignored", detail=f"{detail}: transition already {self._status.value}")
        elif signal.deceased:
            self._event("adt", detail=f"{detail}: patient died")
            self._finish(TransitionStatus.DECEASED, f"patient died ({kind})")
        elif signal.feed and self._patched(FEED_PATCH):
            await self._feed_event(signal, detail)
        elif kind in CANCEL_EVENTS:
            self._cancel(signal, detail)
        elif kind in READMISSION_EVENTS or (kind == "A04" and signal.patient_class == "I"):
            self._readmit(signal, detail)
        elif kind == "A08":
            self._update_information(signal, detail)
        elif kind in ("A02", "A07", "A12"):
            self._location = signal.location or self._location
            self._patient_class = signal.patient_class or self._patient_class
            where = self._location.split("^")[0] or "unknown"  # PV1-3's point of care
            self._event("adt", detail=f"{detail}: location {where}, class {self._patient_class}")
        elif kind in MERGE_EVENTS and signal.merged_into_patient_key:
            self._patient_key = signal.merged_into_patient_key
            self._event("adt", detail=f"{detail}: patient merged")
        else:
            self._event("adt_ignored", detail=f"{detail}: no effect on a transition")
        await self._publish()

    def _update_information(self, signal: AdtSignal, detail: str) -> None:
        """A08: its contact numbers replace the kept ones and the profile's phones, unless
        an A08 that happened later was applied already (see ORDERED_UPDATES_PATCH)."""
        last = self._information_at
        if last is not None and signal.occurred_at < last and self._patched(ORDERED_UPDATES_PATCH):
            self._event("adt_ignored", detail=f"{detail}: older than the last update: not applied")
            return
        if signal.contact_numbers is not None:
            self._contact_numbers = list(signal.contact_numbers)
            if self._patched(PROFILE_PHONES_PATCH):
                self._profile = self._profile.model_copy(
                    update={"phones": tuple(signal.contact_numbers)}
                )
        self._information_at = signal.occurred_at if last is None else max(last, signal.occurred_at)
        self._event("adt", detail=f"{detail}: patient information updated")

    def _cancel(self, signal: AdtSignal, detail: str) -> None:
        """A13 of this discharge cancels it; A11 of the readmission withdraws that."""
        own = signal.encounter_key in (None, self._input.encounter_key)
        if own and signal.event_type == "A11" and self._patched(CANCEL_ORDER_PATCH):
            self._event("adt_ignored", detail=f"{detail}: after the discharge (A13 cancels it)")
        elif own:
            self._event("adt", detail=f"{detail}: discharge cancelled")
            self._finish(TransitionStatus.CANCELLED, f"discharge cancelled ({signal.event_type})")
        elif signal.encounter_key == self._readmission_encounter:
            self._withdraw_readmission(detail)
        else:
            self._event("adt_ignored", detail=f"{detail}: cancels another encounter")

    def _readmit(self, signal: AdtSignal, detail: str) -> None:
        period_end = self._plan.period_ends_at if self._plan else None
        if period_end is not None and signal.occurred_at > period_end:
            self._event("adt_ignored", detail=f"{detail}: admission after the period")
            return
        if self._readmitted_at is None:
            self._readmitted_at = signal.occurred_at
            self._readmission_encounter = signal.encounter_key
        self._event("readmitted", detail=f"{detail}: outreach stopped")
        self._stop_outreach(f"{READMITTED} ({signal.event_type})")

    def _withdraw_readmission(self, detail: str) -> None:
        """A11 cancelled the admission that stopped outreach: resume the stopped steps."""
        self._readmitted_at = None
        self._readmission_encounter = None
        self._event("readmission_withdrawn", detail=f"{detail}: outreach resumed")
        for step_id, step in self._steps.items():
            if step.status == StepStatus.STOPPED and (step.cancel_reason or "").startswith(
                READMITTED
            ):
                step.status = StepStatus.PENDING
                step.cancel_reason = None
                if self._owned_steps:
                    if self._plan is not None:  # before the plan, run() starts every task
                        self._ensure_step_task(step_id)
                else:
                    self._tasks.append(asyncio.create_task(self._run_step(step_id)))
        self._refresh_pending()
