"""The one code path behind MLLP and HTTP: inbox first, then Temporal, then the ACK.

AA is sent only after the message is committed to the inbox and its effect on Temporal is
accepted (DESIGN.md invariant 1). A retransmission (same sending facility + MSH-10) gets the
stored ACK again without a second effect; one that arrives after a transient failure retries
the effect, which is idempotent because the workflow id is derived from the encounter.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import hl7
import structlog
from temporalio.client import Client

from ingest import er7, mapping
from ingest.ack import build_ack
from ingest.errors import INTERNAL_ERROR, HL7Error
from ingest.protocol_library import ProtocolLibrary
from ingest.routing import AdtRouter
from schemas.adt import AckCode, MessageHeader
from store import inbox

log = structlog.get_logger(__name__)
_LOG_CONTEXT = ("message_control_id", "transition_id", "workflow_id")


@dataclass(frozen=True)
class IntakeResult:
    ack: str
    code: AckCode
    status: str
    transition_id: str | None = None
    started: bool = False


class AdtIntake:
    """Holds the pool and the Temporal client; `handle` turns raw ER7 into an ACK."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        client: Client,
        *,
        task_queue: str,
        key_secret: str,
        library: ProtocolLibrary,
        timeout_seconds: float,
    ) -> None:
        self._pool = pool
        self._router = AdtRouter(
            pool, client, library=library, key_secret=key_secret, task_queue=task_queue
        )
        self._zone = ZoneInfo(library.site.calendar.timezone)
        self._timeout = timeout_seconds

    def _now(self) -> datetime:
        return datetime.now(self._zone)

    async def handle(self, raw: bytes) -> IntakeResult:
        header: MessageHeader | None = None
        entry_id: int | None = None
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    message = er7.parse(raw)
                    header = mapping.header(message)
                except HL7Error as error:
                    return await self._dead_letter(raw, error)
                structlog.contextvars.bind_contextvars(message_control_id=header.control_id)
                entry = await inbox.receive(
                    self._pool,
                    raw=raw,
                    sending_facility=header.sending_facility or None,
                    control_id=header.control_id or None,
                    message_type=f"{header.message_type}^{header.trigger_event}",
                )
                entry_id = entry.id
                if entry.ack is not None:
                    log.info("adt.retransmission", inbox_id=entry.id, status=entry.status)
                    return IntakeResult(ack=entry.ack, code=_ack_code(entry.ack), status="resent")
                return await self._process(entry.id, message, header)
        except Exception as exc:  # Postgres or Temporal unavailable, timeout, bug: never an AA
            return await self._transient_failure(header, entry_id, exc)
        finally:
            structlog.contextvars.unbind_contextvars(*_LOG_CONTEXT)

    async def _process(
        self, entry_id: int, message: hl7.Message, header: MessageHeader
    ) -> IntakeResult:
        try:
            event = mapping.to_event(message, self._zone)
        except HL7Error as error:
            ack = build_ack(header, error.ack_code, error=error, now=self._now())
            await inbox.settle(
                self._pool,
                entry_id,
                status="rejected",
                ack_code=error.ack_code.value,
                ack=ack,
                error=str(error),
            )
            log.warning("adt.rejected", inbox_id=entry_id, code=error.ack_code, reason=str(error))
            return IntakeResult(ack=ack, code=error.ack_code, status="rejected")

        routed = await self._router.route(event, self._now())
        result = await self._accept(
            entry_id, header, routed.status, routed.text, routed.transition_id
        )
        return replace(result, started=routed.started)

    async def _accept(
        self,
        entry_id: int,
        header: MessageHeader,
        status: str,
        text: str,
        transition: str | None = None,
    ) -> IntakeResult:
        ack = build_ack(header, AckCode.ACCEPT, text=text, now=self._now())
        await inbox.settle(
            self._pool,
            entry_id,
            status=status,
            ack_code=AckCode.ACCEPT.value,
            ack=ack,
            transition_id=transition,
        )
        log.info("adt.accepted", inbox_id=entry_id, status=status)
        return IntakeResult(ack=ack, code=AckCode.ACCEPT, status=status, transition_id=transition)

    async def _dead_letter(self, raw: bytes, error: HL7Error) -> IntakeResult:
        ack = build_ack(None, error.ack_code, error=error, now=self._now())
        entry = await inbox.receive(
            self._pool, raw=raw, sending_facility=None, control_id=None, message_type=None
        )
        await inbox.settle(
            self._pool,
            entry.id,
            status="rejected",
            ack_code=error.ack_code.value,
            ack=ack,
            error=str(error),
        )
        log.warning("adt.unreadable", inbox_id=entry.id, reason=str(error))
        return IntakeResult(ack=ack, code=error.ack_code, status="rejected")

    async def _transient_failure(
        self, header: MessageHeader | None, entry_id: int | None, exc: Exception
    ) -> IntakeResult:
        reason = f"{type(exc).__name__}: temporarily unable to accept the message; resend it"
        log.error("adt.transient_failure", inbox_id=entry_id, error_type=type(exc).__name__)
        if entry_id is not None:
            try:
                await asyncio.wait_for(inbox.record_error(self._pool, entry_id, reason), 2)
            except Exception:  # the database may be what failed
                log.warning("adt.error_not_recorded", inbox_id=entry_id)
        error = HL7Error(AckCode.ERROR, reason, condition=INTERNAL_ERROR)
        ack = build_ack(header, AckCode.ERROR, error=error, now=self._now())
        return IntakeResult(ack=ack, code=AckCode.ERROR, status="error")


def _ack_code(ack: str) -> AckCode:
    for segment in ack.split("\r"):
        if segment.startswith("MSA"):
            return AckCode(segment[4:6])
    return AckCode.ERROR
