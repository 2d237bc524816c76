"""Enhanced-mode application ACKs sent as messages of their own to the sender's inbound MLLP
port (HL7 v2.5 2.9.3), in the background and with bounded retries. The commit ACK already
answered the connection; what becomes of each application ACK is recorded on its inbox row
(pending, sent, failed with the reason, or kept when the site names no destination), so a
failure is visible and never holds the intake."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from prometheus_client import Counter

from schemas.site import ApplicationAckRoute
from store import inbox

log = structlog.get_logger(__name__)
APPLICATION_ACKS = Counter(
    "carebridge_application_acks",
    "Enhanced-mode application ACKs, by outcome (sent, failed, kept)",
    ["outcome"],
)
ATTEMPTS = 5
FIRST_DELAY_SECONDS = 2.0  # then doubling: 2, 4, 8, 16 s between the five attempts
SEND_TIMEOUT_SECONDS = 10.0


async def send_frame(host: str, port: int, payload: bytes) -> None:
    """One MLLP frame to host:port. The ACK is not itself acknowledged (HL7: ACKs of ACKs are
    not sent), so the connection closes once the bytes are written."""
    _, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"\x0b" + payload + b"\x1c\x0d")
        await writer.drain()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


Sender = Callable[[str, int, bytes], Awaitable[None]]


class ApplicationAckDelivery:
    """Holds the background deliveries; `close` cancels the ones still retrying (their rows
    stay `pending`, visible to an operator)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        attempts: int = ATTEMPTS,
        first_delay: float = FIRST_DELAY_SECONDS,
        timeout: float = SEND_TIMEOUT_SECONDS,
        sender: Sender = send_frame,
    ) -> None:
        self._pool = pool
        self._attempts = attempts
        self._first_delay = first_delay
        self._timeout = timeout
        self._sender = sender
        self._running: set[asyncio.Task[None]] = set()

    def deliver(self, entry_id: int, route: ApplicationAckRoute, payload: bytes) -> None:
        """Send (or keep) the application ACK of inbox row `entry_id`; returns at once."""
        task = asyncio.ensure_future(self._deliver(entry_id, route, payload))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def wait_idle(self) -> None:
        """Until every delivery in progress has ended (tests, graceful stops)."""
        while self._running:
            await asyncio.wait(set(self._running))

    async def close(self) -> None:
        for task in set(self._running):
            task.cancel()
        if self._running:
            await asyncio.wait(set(self._running))

    async def _deliver(self, entry_id: int, route: ApplicationAckRoute, payload: bytes) -> None:
        address = route.address()
        if address is None:  # no destination for this sender: the ACK stays on the row
            APPLICATION_ACKS.labels(outcome="kept").inc()
            log.warning("adt.application_ack_kept", inbox_id=entry_id)
            await self._record(entry_id, route.deliver_to, "kept", 0, None)
            return
        host, port = address
        await self._record(entry_id, route.deliver_to, "pending", 0, None)
        reason = ""
        for attempt in range(1, self._attempts + 1):
            try:
                await asyncio.wait_for(self._sender(host, port, payload), self._timeout)
            except (OSError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"[:300]
                log.warning(
                    "adt.application_ack_retry",
                    inbox_id=entry_id,
                    attempt=attempt,
                    error_type=type(exc).__name__,
                )
                if attempt < self._attempts:
                    await asyncio.sleep(self._first_delay * 2 ** (attempt - 1))
                continue
            APPLICATION_ACKS.labels(outcome="sent").inc()
            await self._record(entry_id, route.deliver_to, "sent", attempt, None)
            return
        APPLICATION_ACKS.labels(outcome="failed").inc()
        log.error("adt.application_ack_failed", inbox_id=entry_id, attempts=self._attempts)
        await self._record(entry_id, route.deliver_to, "failed", self._attempts, reason)

    async def _record(
        self, entry_id: int, destination: str, status: str, attempts: int, error: str | None
    ) -> None:
        """Best effort, bounded: the database may be what is failing."""
        try:
            await asyncio.wait_for(
                inbox.record_application_ack(
                    self._pool,
                    entry_id,
                    destination=destination,
                    status=status,
                    attempts=attempts,
                    error=error,
                ),
                self._timeout,
            )
        except Exception as exc:
            log.warning(
                "adt.application_ack_not_recorded", inbox_id=entry_id, error_type=type(exc).__name__
            )
