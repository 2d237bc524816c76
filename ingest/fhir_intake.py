"""The FHIR door: a Da Vinci notification Bundle through the HL7 v2 path's inbox and routing.

The same promise as an AA (DESIGN.md invariant 1): 200 only after the Bundle is committed
to the inbox (sealed, like an HL7 message's bytes) and its effect on Temporal is accepted.
A resend (same sender `MessageHeader.source.endpoint`, same `MessageHeader.id`, same bytes)
gets the stored answer again; a refusal is kept too, as a dead letter is. A database or
Temporal failure is a 503 OperationOutcome (resend), never a 4xx: the message was not wrong.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from ingest import fhir_notifications as notifications
from ingest.fhir_notifications import FhirRefusal, Notification
from ingest.fhir_outcome import dumps, http_status, outcome
from ingest.intake import AdtIntake
from ingest.metrics import ACK_LATENCY, DEAD_LETTERS, FHIR_MESSAGES
from ingest.routing import Routed
from schemas.adt import AdtEvent
from schemas.site import UnmatchedPatientIdentifier
from store import inbox
from store.encryption import FieldCipher

log = structlog.get_logger(__name__)
SENDER_PREFIX = "FHIR "  # inbox sending_application: never the same as an MSH-3


@dataclass(frozen=True)
class FhirAnswer:
    status: int
    body: dict[str, Any]
    inbox_id: int | None = None
    transition_id: str | None = None
    event: str = "unknown"  # a Da Vinci event code, the metrics label (a bounded set)


class FhirIntake:
    """`handle` turns a `$process-message` body into its HTTP status and OperationOutcome."""

    def __init__(
        self, intake: AdtIntake, pool: asyncpg.Pool, cipher: FieldCipher, timeout_seconds: float
    ) -> None:
        self._intake = intake
        self._pool = pool
        self._cipher = cipher
        self._timeout = timeout_seconds

    async def handle(self, raw: bytes) -> FhirAnswer:
        """The answer, within the intake's time bound; counted and timed like an ACK."""
        started = time.perf_counter()
        answer = await self._bounded(raw)
        ACK_LATENCY.observe(time.perf_counter() - started)
        FHIR_MESSAGES.labels(event=answer.event, status=str(answer.status)).inc()
        if answer.status in (400, 403):
            DEAD_LETTERS.inc()
        return answer

    async def _bounded(self, raw: bytes) -> FhirAnswer:
        entry: list[int] = []  # the inbox row, once committed (for the failure's note)
        work = asyncio.ensure_future(self._unbinding(self._handle(raw, entry)))
        try:
            done, _ = await asyncio.wait({work}, timeout=self._timeout)
        except asyncio.CancelledError:
            work.cancel()
            raise
        if work in done and work.exception() is None:
            return work.result()
        if work not in done:  # not awaited (a frozen server may hang its cancellation too)
            work.cancel()
            work.add_done_callback(lambda t: t.cancelled() or t.exception())
        failure = work.exception() if work in done else TimeoutError()
        log.error(
            "fhir.transient_failure",
            inbox_id=entry[0] if entry else None,
            error_type=type(failure).__name__,
        )
        reason = f"{type(failure).__name__}: temporarily unable to accept the message; resend it."
        if entry:
            try:
                await asyncio.wait_for(inbox.record_error(self._pool, entry[0], reason), 2.0)
            except Exception:  # the database may be what failed
                log.warning("fhir.error_not_recorded", inbox_id=entry[0])
        return FhirAnswer(503, outcome("error", "transient", reason), entry[0] if entry else None)

    @staticmethod
    async def _unbinding(work: Coroutine[Any, Any, FhirAnswer]) -> FhirAnswer:
        """The routing binds the transition to the log context: only for this message."""
        try:
            return await work
        finally:
            structlog.contextvars.unbind_contextvars("transition_id", "workflow_id")

    async def _handle(self, raw: bytes, entry: list[int]) -> FhirAnswer:
        try:
            notification = notifications.read(raw)
        except FhirRefusal as unreadable:
            return await self._keep_refused(raw, None, unreadable)
        event: AdtEvent | None = None
        mapping_refusal: FhirRefusal | None = None
        try:
            event = notifications.to_event(notification, self._intake.site.zone_for)
        except FhirRefusal as refused:
            mapping_refusal = refused
        stored = await inbox.receive(
            self._pool,
            self._cipher,
            raw=raw,
            sending_application=SENDER_PREFIX + notification.sender,
            sending_facility=event.facility if event else None,
            control_id=notification.message_id,
            message_type=f"FHIR^{notification.event[:40] or 'unknown'}",
            at=self._intake.now(),
        )
        entry.append(stored.id)
        if stored.ack is not None:
            log.info("fhir.resent", inbox_id=stored.id, status=stored.status)
            answer = json.loads(stored.ack)
            return FhirAnswer(http_status(answer), answer, stored.id)
        if mapping_refusal is not None or event is None:
            assert mapping_refusal is not None
            return await self._settle_refused(stored.id, mapping_refusal)
        if refusal := self._refusal(event):
            return await self._settle_refused(stored.id, refusal)
        return await self._route(stored.id, notification, event)

    def _refusal(self, event: AdtEvent) -> FhirRefusal | None:
        allowed = self._intake.allowed_facilities
        if allowed and event.facility not in allowed:
            return FhirRefusal(
                403,
                "forbidden",
                f"facility {event.facility} is not allowed here.",
                "MessageHeader.sender",
            )
        unmatched = self._intake.router.unmatched_identifier(event)
        refuse = self._intake.site.unmatched_patient_identifier
        if unmatched and refuse == UnmatchedPatientIdentifier.REFUSE:
            text = unmatched.text.replace(unmatched.field, "Patient.identifier")
            return FhirRefusal(400, "value", f"{text}.", "Patient.identifier")
        return None

    async def _route(
        self, entry_id: int, notification: Notification, event: AdtEvent
    ) -> FhirAnswer:
        def answer(routed: Routed) -> tuple[str, str]:
            body = outcome(
                "information",
                "informational",
                f"{notification.event}: {routed.text}.",
                transition_id=routed.transition_id,
            )
            return "AA", dumps(body)

        routed = await self._intake.route_and_settle(entry_id, event, answer)
        log.info("fhir.accepted", inbox_id=entry_id, status=routed.status)
        body = json.loads(answer(routed)[1])
        return FhirAnswer(200, body, entry_id, routed.transition_id, notification.event)

    async def _keep_refused(
        self, raw: bytes, message_type: str | None, refusal: FhirRefusal
    ) -> FhirAnswer:
        """A body that is no readable notification: kept as a dead letter, refused."""
        stored = await inbox.receive(
            self._pool,
            self._cipher,
            raw=raw,
            sending_facility=None,
            control_id=None,
            message_type=message_type or "FHIR",
            at=self._intake.now(),
        )
        return await self._settle_refused(stored.id, refusal)

    async def _settle_refused(self, entry_id: int, refusal: FhirRefusal) -> FhirAnswer:
        body = outcome("error", refusal.code, refusal.text, expression=refusal.expression)
        await inbox.settle(
            self._pool,
            entry_id,
            status="rejected",
            ack_code="AR" if refusal.status == 403 else "AE",
            ack=dumps(body),
            error=refusal.text,
            decision="rejected",
            at=self._intake.now(),
        )
        log.warning("fhir.rejected", inbox_id=entry_id, code=refusal.code)
        return FhirAnswer(refusal.status, body, entry_id)
