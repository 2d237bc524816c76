"""The one code path behind MLLP and HTTP: inbox first, then Temporal, then the ACK.

AA is sent only after the message is committed to the inbox and its effect on Temporal is
accepted (DESIGN.md invariant 1). A retransmission (same sending facility + MSH-10) gets the
stored ACK again without a second effect; one that arrives after a transient failure retries
the effect, which is idempotent because workflow ids are derived from the encounter. Messages
of one encounter are routed one at a time, in arrival order (invariant 3).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg
import hl7
import structlog
from opentelemetry import trace
from temporalio.client import Client

from ingest import er7, mapping
from ingest.ack import acknowledgments, build_ack, is_enhanced_mode
from ingest.application_acks import ApplicationAckDelivery
from ingest.errors import (
    DUPLICATE_KEY,
    INTERNAL_ERROR,
    UNKNOWN_KEY,
    UNSUPPORTED_PROCESSING_ID,
    HL7Error,
)
from ingest.metrics import ACK_LATENCY, ADT_MESSAGES, DEAD_LETTERS
from ingest.routing import AdtRouter, Routed
from schemas.adt import AckCode, AdtEvent, MessageHeader
from schemas.protocol_library import ProtocolLibrary
from schemas.site import (
    ApplicationAckRoute,
    ReusedControlIds,
    SiteConfig,
    UnmatchedPatientIdentifier,
)
from store import inbox
from store.encryption import BlindIndex, FieldCipher

log = structlog.get_logger(__name__)
tracer = trace.get_tracer("carebridge.ingest")  # a no-op unless tracing is configured
_LOG_CONTEXT = ("message_control_id", "transition_id", "workflow_id")
NOT_ALLOWED = ("207", "Application internal error")
DOUBLED_ESCAPE_WARNING = "MSH-2 sent as ^~\\\\& (a doubled backslash) was read as ^~\\&"
ERROR_NOTE_SECONDS = 2.0  # how long a failure's note on the inbox row may hold the answer


@dataclass(frozen=True)
class IntakeResult:
    """`ack` is the application ACK (stored, and what HTTP returns); `replies` is what the
    acknowledgment mode puts on the wire (one in original mode, 0-2 in enhanced mode)."""

    ack: str
    code: AckCode
    status: str
    replies: tuple[str, ...] = ()
    inbox_id: int | None = None
    transition_id: str | None = None
    started: bool = False
    event: str = "unknown"  # the trigger event, as the metrics label
    charset: str = "utf-8"  # the Python codec the replies are written in (MSH-18)

    def wire(self) -> list[bytes]:
        """The replies as bytes in the sender's character set."""
        return [reply.encode(self.charset, errors="replace") for reply in self.replies]


@dataclass
class _Progress:
    """How far a message got, for the answer when its processing does not finish in time."""

    header: MessageHeader | None = None
    entry_id: int | None = None


@dataclass
class _KeyedLocks:
    """One lock per encounter, dropped when nobody holds or waits for it."""

    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self.locks.setdefault(key, asyncio.Lock())
        self.users[key] = self.users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self.users[key] -= 1
            if not self.users[key]:
                del self.users[key], self.locks[key]


class AdtIntake:
    """Holds the pool and the router; `handle` turns raw ER7 into its ACKs."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: Client,
        *,
        task_queue: str,
        key_secret: str,
        library: ProtocolLibrary,
        timeout_seconds: float,
        field_cipher: FieldCipher,
        blind_index: BlindIndex,
        allowed_facilities: frozenset[str] = frozenset(),
        production: bool = False,
        application_acks: ApplicationAckDelivery | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """`field_cipher` seals each message's raw bytes before they reach the inbox (and
        opens them again to reprocess one); with `blind_index` it writes the registry.
        `clock` (default: the wall clock) is the intake's now: `carebridge simulate` passes
        its simulated time."""
        self._clock = clock
        self._pool = pool
        self._cipher = field_cipher
        self._router = AdtRouter(
            pool,
            client,
            library=library,
            key_secret=key_secret,
            task_queue=task_queue,
            field_cipher=field_cipher,
            blind_index=blind_index,
        )
        self._site = library.site
        self._zone = library.site.calendar_zone()  # the ACK's own timestamp
        self._timeout = timeout_seconds
        self._allowed = allowed_facilities
        self._encounter_locks = _KeyedLocks()
        self._processing_ids = library.site.accepted_processing_ids(production)
        self._abandoned: set[asyncio.Future[Any]] = set()
        self.application_acks = application_acks or ApplicationAckDelivery(pool)

    async def close(self) -> None:
        """Stop the application ACKs still retrying (their rows stay pending)."""
        await self.application_acks.close()

    def now(self) -> datetime:
        """The site's clock, for ACK timestamps and the received time of a discharge."""
        if self._clock is not None:
            return self._clock().astimezone(self._zone)
        return datetime.now(self._zone)

    async def handle(
        self,
        raw: bytes,
        *,
        reprocess_of: int | None = None,
        sender_facilities: frozenset[str] | None = None,
    ) -> IntakeResult:
        """`sender_facilities`: the MSH-4 values this sender may send for (its TLS client
        certificate's), or None when the connection does not restrict them."""
        started = time.perf_counter()
        with tracer.start_as_current_span("adt.message") as span:
            result = await self._handle(raw, reprocess_of, sender_facilities)
            span.set_attribute("hl7.event", result.event)
            span.set_attribute("hl7.ack", result.code.value)
        ACK_LATENCY.observe(time.perf_counter() - started)
        ADT_MESSAGES.labels(event=result.event, ack=result.code.value).inc()
        if result.status == "rejected":
            DEAD_LETTERS.inc()
        return result

    async def _handle(
        self, raw: bytes, reprocess_of: int | None, sender_facilities: frozenset[str] | None
    ) -> IntakeResult:
        return await self._bounded(
            lambda progress: self._intake(raw, reprocess_of, sender_facilities, progress)
        )

    async def _bounded(
        self, work: Callable[[_Progress], Coroutine[Any, Any, IntakeResult]]
    ) -> IntakeResult:
        """The answer within the bound, whatever the database or Temporal do: the work runs as
        a task of its own, and a task still running at the bound is cancelled without waiting
        for it (asyncpg's cancellation can itself hang on a frozen server)."""
        progress = _Progress()
        task = asyncio.ensure_future(work(progress))
        try:
            done, _ = await asyncio.wait({task}, timeout=self._timeout)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if task in done:
            failure = task.exception()
            if failure is None:
                return task.result()
            if not isinstance(failure, Exception):
                raise failure
        else:
            self._abandon(task)
            failure = TimeoutError(f"no answer within {self._timeout} s")
        return await self._transient_failure(progress.header, progress.entry_id, failure)

    def _abandon(self, task: asyncio.Future[Any]) -> None:
        """Cancel a task and keep a reference until it ends (its outcome is only logged)."""
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _intake(
        self,
        raw: bytes,
        reprocess_of: int | None,
        sender_facilities: frozenset[str] | None,
        progress: _Progress,
    ) -> IntakeResult:
        try:
            try:
                message = er7.parse(raw, self._site.character_sets)
                header = mapping.header(message)
            except HL7Error as error:  # still answer MSA-2 with MSH-10 where it can be read
                salvaged = mapping.salvage_header(raw)
                return await self._dead_letter(raw, error, reprocess_of, salvaged)
            progress.header = header
            structlog.contextvars.bind_contextvars(message_control_id=header.control_id)
            entry = await inbox.receive(
                self._pool,
                self._cipher,
                raw=raw,
                sending_application=header.sending_application or None,
                sending_facility=header.sending_facility or None,
                control_id=header.control_id or None,
                message_type=f"{header.message_type}^{header.trigger_event}",
                reprocessed_from=reprocess_of,
                at=self.now(),
            )
            progress.entry_id = entry.id
            if entry.ack is not None:
                log.info("adt.retransmission", inbox_id=entry.id, status=entry.status)
                return self._result(
                    header, entry.ack, _ack_code(entry.ack), "resent", entry.id, resent=True
                )
            if entry.reused_control_id:
                refused = self._reused_control_id(entry.id, header)
                if refused is not None:
                    return await self._reject(entry.id, header, refused)
            warnings = [DOUBLED_ESCAPE_WARNING] if er7.has_doubled_escape(raw) else []
            if refused := self._facility_refusal(header, sender_facilities):
                return await self._reject(entry.id, header, refused)
            return await self._process(entry.id, message, header, warnings)
        finally:
            structlog.contextvars.unbind_contextvars(*_LOG_CONTEXT)

    def _reused_control_id(self, entry_id: int, header: MessageHeader) -> HL7Error | None:
        """A different message with a control id this sender used before: stored either way;
        processed (the default: senders reset counters) or refused, as the site says."""
        log.warning("adt.control_id_reused", inbox_id=entry_id)
        if self._site.reused_control_ids == ReusedControlIds.PROCESS:
            return None
        return HL7Error(
            AckCode.ERROR,
            f"control id {header.control_id} was already used by a different message from "
            "this sender; send it with a new MSH-10",
            "MSH",
            10,
            DUPLICATE_KEY,
        )

    def _facility_refusal(
        self, header: MessageHeader, sender_facilities: frozenset[str] | None
    ) -> HL7Error | None:
        """MSH-4 is written by the sender itself: it must be one this instance accepts
        (CAREBRIDGE_ALLOWED_FACILITIES) and one this connection's certificate may send for."""
        facility = header.facility or "(empty)"
        if self._allowed and header.facility not in self._allowed:
            reason = f"sending facility {facility} is not allowed here"
        elif sender_facilities is not None and header.facility not in sender_facilities:
            reason = f"this sender's certificate may not send for facility {facility}"
        else:
            return None
        return HL7Error(AckCode.REJECT, reason, "MSH", 4, NOT_ALLOWED)

    def _processing_id_refusal(self, header: MessageHeader) -> HL7Error | None:
        """MSH-11 (table 0103): training or debugging messages must not reach patients on an
        instance that does not accept them. An empty MSH-11 is read as P (production)."""
        processing_id = (header.processing_id or "P").upper()
        if processing_id in self._processing_ids:
            return None
        return HL7Error(
            AckCode.REJECT,
            f"processing id {processing_id} is not accepted here (accepted: "
            f"{', '.join(self._processing_ids)})",
            "MSH",
            11,
            UNSUPPORTED_PROCESSING_ID,
        )

    async def reprocess(self, entry_id: int) -> IntakeResult:
        """Run a stored message again (after a fix), as a new inbox row linked to the first.
        LookupError: no such message; RawUnavailable: its bytes are removed or do not open."""
        original = await inbox.get_message(self._pool, self._cipher, entry_id)
        if original is None:
            raise LookupError(f"no message {entry_id}")
        if (original["message_type"] or "").startswith("FHIR"):  # not ER7: resend it instead
            raise inbox.RawUnavailable(
                f"message {entry_id} is a FHIR Bundle: carebridge does not reprocess those "
                "yet; have the sender post it again",
                removed=False,
            )
        if original["raw"] is None:
            removed = original["raw_removed_at"] is not None
            reason = (
                inbox.removal_notice(original["raw_removed_at"], self._zone)
                if removed
                else original["raw_unreadable"]
            )
            raise inbox.RawUnavailable(
                f"message {entry_id} cannot be reprocessed: {reason}", removed=removed
            )
        return await self.handle(original["raw"], reprocess_of=entry_id)

    async def reject_oversized(self, head: bytes, limit: int) -> IntakeResult:
        """A frame over the size limit: its first bytes are kept as a dead letter, AR sent."""
        error = HL7Error(
            AckCode.REJECT,
            f"message exceeds the {limit}-byte limit",
            condition=INTERNAL_ERROR,  # the whole message, not one field, is at fault
        )
        return await self.refuse(head, error)

    async def refuse(self, raw: bytes, error: HL7Error) -> IntakeResult:
        """A frame refused before parsing (two messages in one frame, say): kept as a dead
        letter, answered with MSA-2 = its MSH-10 where that can be read (AR for a transient
        failure to keep it, as for any message)."""
        header = None
        with suppress(HL7Error):
            header = mapping.header(er7.parse(raw.split(b"\r", 1)[0] + b"\r"))
        known = header or mapping.salvage_header(raw)

        async def keep(progress: _Progress) -> IntakeResult:
            progress.header = known
            return await self._dead_letter(raw, error, None, known)

        return await self._bounded(keep)

    def _result(
        self,
        header: MessageHeader | None,
        ack: str,
        code: AckCode,
        status: str,
        entry_id: int | None,
        transition: str | None = None,
        error: HL7Error | None = None,
        *,
        resent: bool = False,
    ) -> IntakeResult:
        route = self._application_ack_route(header)
        acks = acknowledgments(
            header,
            ack,
            code,
            error=error,
            committed=entry_id is not None,
            application_ack_on_connection=route.deliver_to == "connection",
            now=self.now(),
        )
        charset = er7.reply_codec(header, self._site.character_sets)
        if acks.application is not None and entry_id is not None and not resent:
            payload = acks.application.encode(charset, errors="replace")
            self.application_acks.deliver(entry_id, route, payload)
        return IntakeResult(
            ack=ack,
            code=code,
            status=status,
            replies=acks.connection,
            inbox_id=entry_id,
            transition_id=transition,
            event=_event_label(header),
            charset=charset,
        )

    def _application_ack_route(self, header: MessageHeader | None) -> ApplicationAckRoute:
        if header is None:
            return ApplicationAckRoute(deliver_to="none")
        return self._site.application_ack_route(header.sending_application, header.sending_facility)

    async def _reject(self, entry_id: int, header: MessageHeader, error: HL7Error) -> IntakeResult:
        ack = build_ack(header, error.ack_code, error=error, now=self.now())
        await inbox.settle(
            self._pool,
            entry_id,
            status="rejected",
            ack_code=error.ack_code.value,
            ack=ack,
            error=str(error),
            decision="rejected",
            at=self.now(),
        )
        log.warning("adt.rejected", inbox_id=entry_id, code=error.ack_code, reason=str(error))
        return self._result(header, ack, error.ack_code, "rejected", entry_id, error=error)

    async def _process(
        self, entry_id: int, message: hl7.Message, header: MessageHeader, warnings: list[str]
    ) -> IntakeResult:
        """Validate, route and settle; `warnings` (what was read leniently) join the decision
        stored on the row and MSA-3."""
        if refused := self._processing_id_refusal(header):
            return await self._reject(entry_id, header, refused)
        try:
            event = mapping.to_event(
                message,
                self._site.zone_for(header.facility),
                visit_sources=self._site.visit_number_sources,
                results=bool(self._site.feed.discharge_result_codes),
            )
        except HL7Error as error:
            return await self._reject(entry_id, header, error)
        unmatched = self._router.unmatched_identifier(event)
        refuse_unmatched = (
            self._site.unmatched_patient_identifier == UnmatchedPatientIdentifier.REFUSE
        )
        if unmatched and refuse_unmatched:
            segment, number = unmatched.field.split("-")
            refused = HL7Error(AckCode.ERROR, unmatched.text, segment, int(number), UNKNOWN_KEY)
            return await self._reject(entry_id, header, refused)

        if unmatched:
            log.warning("adt.patient_identifier_unmatched", inbox_id=entry_id)
            warnings.append(f"{unmatched.text}, the first was used")
        # Settled under the encounter's lock: an A03 that applies this visit's kept events
        # must find each one's row settled (pending), never settle it before it is.
        async with self._encounter_locks.hold(f"{event.facility}\x1f{event.visit_number}"):
            routed = await self._router.route(event, self.now(), inbox_id=entry_id)
            if warnings:
                routed = replace(routed, text="; ".join([routed.text, *warnings]))
            ack = build_ack(header, AckCode.ACCEPT, text=routed.text, now=self.now())
            await inbox.settle(
                self._pool,
                entry_id,
                status=routed.status,
                ack_code=AckCode.ACCEPT.value,
                ack=ack,
                decision=routed.text,
                transition_id=routed.transition_id,
                at=self.now(),
            )
        log.info("adt.accepted", inbox_id=entry_id, status=routed.status)
        result = self._result(
            header, ack, AckCode.ACCEPT, routed.status, entry_id, routed.transition_id
        )
        return replace(result, started=routed.started)

    @property
    def site(self) -> SiteConfig:
        return self._site

    @property
    def router(self) -> AdtRouter:
        return self._router

    @property
    def allowed_facilities(self) -> frozenset[str]:
        """CAREBRIDGE_ALLOWED_FACILITIES (empty: every facility)."""
        return self._allowed

    async def route_and_settle(
        self, entry_id: int, event: AdtEvent, answer: Callable[[Routed], tuple[str, str]]
    ) -> Routed:
        """Route an event another door mapped (FHIR) as `_process` routes one: under its
        encounter's lock, then its inbox row settled with `answer(routed)` (the ack code and
        the answer stored for a resend), so both doors order one visit's events alike."""
        async with self._encounter_locks.hold(f"{event.facility}\x1f{event.visit_number}"):
            routed = await self._router.route(event, self.now(), inbox_id=entry_id)
            ack_code, stored = answer(routed)
            await inbox.settle(
                self._pool,
                entry_id,
                status=routed.status,
                ack_code=ack_code,
                ack=stored,
                decision=routed.text,
                transition_id=routed.transition_id,
                at=self.now(),
            )
        return routed

    async def _dead_letter(
        self,
        raw: bytes,
        error: HL7Error,
        reprocess_of: int | None,
        header: MessageHeader | None = None,
    ) -> IntakeResult:
        ack = build_ack(header, error.ack_code, error=error, now=self.now())
        entry = await inbox.receive(
            self._pool,
            self._cipher,
            raw=raw,
            sending_facility=None,
            control_id=None,
            message_type=None,
            reprocessed_from=reprocess_of,
            at=self.now(),
        )
        await inbox.settle(
            self._pool,
            entry.id,
            status="rejected",
            ack_code=error.ack_code.value,
            ack=ack,
            error=str(error),
            decision="rejected",
            at=self.now(),
        )
        log.warning("adt.unreadable", inbox_id=entry.id, reason=str(error))
        return self._result(header, ack, error.ack_code, "rejected", entry.id, error=error)

    async def _transient_failure(
        self, header: MessageHeader | None, entry_id: int | None, exc: BaseException
    ) -> IntakeResult:
        """Original mode: AR, rejected for a reason unrelated to its content, resend it (AE
        would tell the sender to fix the message, and engines park AE'd messages). Enhanced
        mode: CE when the message could not be stored; a stored one got its CA, and its
        application ACK is AE (the row stays `received`, for `messages reprocess`)."""
        reason = f"{type(exc).__name__}: temporarily unable to accept the message; resend it"
        log.error("adt.transient_failure", inbox_id=entry_id, error_type=type(exc).__name__)
        if entry_id is not None:
            noted = asyncio.ensure_future(inbox.record_error(self._pool, entry_id, reason))
            done, _ = await asyncio.wait({noted}, timeout=ERROR_NOTE_SECONDS)
            if noted not in done or noted.exception() is not None:  # the database may be down
                log.warning("adt.error_not_recorded", inbox_id=entry_id)
                self._abandon(noted)
        stored_in_enhanced_mode = entry_id is not None and is_enhanced_mode(header)
        code = AckCode.ERROR if stored_in_enhanced_mode else AckCode.REJECT
        error = HL7Error(code, reason, condition=INTERNAL_ERROR)
        ack = build_ack(header, code, error=error, now=self.now())
        return self._result(header, ack, code, "error", entry_id, error=error)


def _event_label(header: MessageHeader | None) -> str:
    """The trigger event (A01..A99) for the metrics label, else 'unknown': a bounded set,
    never anything a sender could fill with patient data."""
    trigger = header.trigger_event if header else ""
    if len(trigger) == 3 and trigger[0] == "A" and trigger[1:].isdigit():
        return trigger
    return "unknown"


def _ack_code(ack: str) -> AckCode:
    for segment in ack.split("\r"):
        if segment.startswith("MSA"):
            return AckCode(segment[4:6])
    return AckCode.ERROR
