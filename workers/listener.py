"""The MLLP listener: frames in (0x0B ... 0x1C 0x0D), one intake per message, ACK frames out.

Messages on one connection are handled in order; connections are independent.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import structlog

from ingest.intake import AdtIntake
from workers.settings import Settings

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"

log = structlog.get_logger(__name__)


def frame(payload: bytes) -> bytes:
    return START_BLOCK + payload + END_BLOCK


class FrameTooLarge(Exception):
    """The frame in progress passed the size limit; `head` holds its first bytes."""

    def __init__(self, head: bytes, limit: int) -> None:
        super().__init__(f"frame exceeds {limit} bytes")
        self.head = head
        self.limit = limit


class MllpFrameReader:
    """Accumulates bytes and yields complete MLLP payloads (handles split and pipelined frames)."""

    def __init__(self, max_bytes: int) -> None:
        self._buffer = bytearray()
        self._max_bytes = max_bytes
        self._discarding = False  # inside an oversized frame: drop bytes until its end

    def feed(self, data: bytes) -> list[bytes | FrameTooLarge]:
        """Complete payloads in order; an oversized frame yields one FrameTooLarge in its
        place, and the reader resynchronises on the next end block."""
        self._buffer.extend(data)
        out: list[bytes | FrameTooLarge] = []
        while True:
            end = self._buffer.find(END_BLOCK)
            if end < 0:
                break
            chunk = bytes(self._buffer[:end])
            del self._buffer[: end + len(END_BLOCK)]
            if self._discarding:
                self._discarding = False
                continue
            start = chunk.find(START_BLOCK)
            if start >= 0:  # bytes before the start block are line noise
                payload = chunk[start + 1 :]
                if len(payload) > self._max_bytes:
                    out.append(FrameTooLarge(payload[: self._max_bytes], self._max_bytes))
                else:
                    out.append(payload)
        if not self._discarding and len(self._buffer) > self._max_bytes + 1:
            start = self._buffer.find(START_BLOCK)
            head = bytes(self._buffer[start + 1 : start + 1 + self._max_bytes])
            out.append(FrameTooLarge(head, self._max_bytes))
            self._buffer.clear()
            self._discarding = True
        elif self._discarding:
            self._buffer.clear()
        return out


class MllpListener:
    """Many connections at once; on each, messages are answered in the order they came."""

    def __init__(
        self,
        intake: AdtIntake,
        *,
        max_bytes: int,
        idle_timeout: float = 300.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._intake = intake
        self._max_bytes = max_bytes
        self._idle_timeout = idle_timeout
        self._ssl = ssl_context
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._waiting: set[asyncio.Task[None]] = set()  # connections blocked reading
        self._closing = False

    async def start(self, host: str, port: int) -> asyncio.Server:
        self._closing = False
        self._server = await asyncio.start_server(self._serve, host, port, ssl=self._ssl)
        return self._server

    async def close(self, grace_seconds: float = 10.0) -> None:
        """Graceful stop: accept no new connection, answer every frame already received,
        then close each connection (a partial frame is dropped unanswered, so the sender
        resends it); connections still busy after `grace_seconds` are cut."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task in self._waiting:
            task.cancel()  # idle between frames: nothing in flight
        if self._connections:
            _, busy = await asyncio.wait(self._connections, timeout=grace_seconds)
            for task in busy:
                task.cancel()
            if busy:
                await asyncio.wait(busy)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        frames = MllpFrameReader(self._max_bytes)
        try:
            while not self._closing:
                # An idle or stalled client is dropped: no slow-client resource leak.
                self._waiting.add(task)
                try:
                    data = await asyncio.wait_for(reader.read(65536), self._idle_timeout)
                finally:
                    self._waiting.discard(task)
                if not data:
                    break  # a frame cut off by the close was never acknowledged: resend it
                for item in frames.feed(data):
                    if isinstance(item, FrameTooLarge):
                        log.warning("mllp.frame_too_large", limit=item.limit)
                        result = await self._intake.reject_oversized(item.head, item.limit)
                    else:
                        result = await self._intake.handle(item)
                    for reply in result.wire():
                        writer.write(frame(reply))
                    await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def listener_for(intake: AdtIntake, settings: Settings) -> MllpListener:
    """The listener as configured: size limit, idle timeout, TLS when a cert is given."""
    context = None
    if settings.mllp_tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.mllp_tls_cert, settings.mllp_tls_key)
    return MllpListener(
        intake,
        max_bytes=settings.max_message_bytes,
        idle_timeout=settings.mllp_idle_timeout_seconds,
        ssl_context=context,
    )
