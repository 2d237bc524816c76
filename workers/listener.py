"""The MLLP listener: frames in (0x0B ... 0x1C 0x0D), one intake per message, ACK frames out.

A frame holds one message or one batch (ingest.batch answers it). Messages on one connection
are handled in order; connections are independent.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Network, IPv6Network, ip_address

import structlog

from ingest import batch
from ingest.errors import SEGMENT_SEQUENCE_ERROR, HL7Error
from ingest.intake import AdtIntake
from schemas.adt import AckCode
from workers.runtime.settings import Settings

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
_SB, _CR = 0x0B, 0x0D
_BLOCK_BYTE = re.compile(rb"[\x0b\x1c]")  # a start or an end block

log = structlog.get_logger(__name__)


def frame(payload: bytes) -> bytes:
    return START_BLOCK + payload + END_BLOCK


class FrameTooLarge(Exception):
    """The frame in progress passed the size limit; `head` holds its first bytes."""

    def __init__(self, head: bytes, limit: int) -> None:
        super().__init__(f"frame exceeds {limit} bytes")
        self.head = head
        self.limit = limit


@dataclass(frozen=True)
class AbortedFrame:
    """A frame cut short by a new start block: the sender gave up on it, so it is kept as a
    dead letter but never answered (a reply it does not expect would be paired with its
    next message)."""

    payload: bytes


Framed = bytes | FrameTooLarge | AbortedFrame


class _State(Enum):
    OUTSIDE = "outside"  # between frames: bytes before a start block are line noise
    INSIDE = "inside"  # in a frame: bytes are its payload
    DISCARDING = "discarding"  # in an oversized frame (already answered): bytes are dropped


class MllpFrameReader:
    """Accumulates bytes and yields complete MLLP payloads (handles split and pipelined frames).

    It resynchronises on every block byte: a start block (0x0B) always starts a new frame
    (one still open is aborted), and an end block (0x1C) ends the frame whether or not the
    CR follows. Whether a CR follows is only known from the next byte, which may come in the
    next read: the state is kept across reads, and a frame whose end block is the last byte
    before the connection closes is never yielded (never acknowledged: the sender resends).
    """

    def __init__(self, max_bytes: int) -> None:
        self._buffer = bytearray()
        self._max_bytes = max_bytes
        self._state = _State.OUTSIDE
        self._end_seen = False  # the frame's 0x1C was the last byte read: is a CR next?
        self.frames_started = 0  # start blocks seen: a new one restarts the frame deadline

    @property
    def in_frame(self) -> bool:
        """A frame has started and not yet ended (its deadline runs)."""
        return self._end_seen or self._state is not _State.OUTSIDE

    def feed(self, data: bytes) -> list[Framed]:
        """Complete payloads in order; an oversized frame yields one FrameTooLarge in its
        place (then its bytes are dropped up to its end), an aborted one an AbortedFrame."""
        out: list[Framed] = []
        position = 0
        while position < len(data):
            if self._end_seen:
                position = self._finish(data, position, out)
            elif self._state is _State.OUTSIDE:
                start = data.find(START_BLOCK, position)
                if start < 0:
                    break  # line noise
                self._state = _State.INSIDE
                self.frames_started += 1
                position = start + 1
            else:
                position = self._take(data, position, out)
        return out

    def _take(self, data: bytes, position: int, out: list[Framed]) -> int:
        """Payload bytes up to the next block byte; then act on that byte."""
        found = _BLOCK_BYTE.search(data, position)
        stop = found.start() if found else len(data)
        if self._state is _State.INSIDE:
            self._buffer.extend(data[position:stop])
            if len(self._buffer) > self._max_bytes:
                out.append(FrameTooLarge(bytes(self._buffer[: self._max_bytes]), self._max_bytes))
                self._buffer.clear()
                self._state = _State.DISCARDING
        if found is None:
            return stop
        if data[stop] == _SB:
            self._restart(out)
        else:
            self._end_seen = True
        return stop + 1

    def _restart(self, out: list[Framed]) -> None:
        """A start block inside a frame: the sender abandoned that frame for a new one."""
        aborted = bytes(self._buffer)
        if self._state is _State.INSIDE and aborted.strip():
            out.append(AbortedFrame(aborted))
        self._buffer.clear()
        self._state = _State.INSIDE
        self.frames_started += 1

    def _finish(self, data: bytes, position: int, out: list[Framed]) -> int:
        """The frame ends at its end block either way: the next byte is consumed when it is
        the CR, and otherwise read again outside the frame (a start block opens the next)."""
        self._end_seen = False
        ended_with_cr = data[position] == _CR
        if not ended_with_cr:
            log.warning("mllp.end_block_without_cr")
        if self._state is _State.INSIDE:
            out.append(bytes(self._buffer))
        self._buffer.clear()
        self._state = _State.OUTSIDE
        return position + 1 if ended_with_cr else position


@dataclass(frozen=True)
class ConnectionLimits:
    """What one sender, or all of them, may hold: connections, and time per frame."""

    max_connections: int = 200
    max_per_source: int = 20
    idle_timeout: float = 300.0  # between frames
    frame_deadline: float = 60.0  # from a frame's start block to its end
    keepalive_seconds: int = 60


@dataclass(frozen=True)
class SenderRules:
    """Who may connect, and for which facilities: source networks (empty: any) and, with
    mutual TLS, the facilities each client certificate's subject CN may send for (empty:
    any; a CN not listed may send for none)."""

    sources: tuple[IPv4Network | IPv6Network, ...] = ()
    facilities_by_subject: dict[str, frozenset[str]] = field(default_factory=dict)

    def admits(self, address: str) -> bool:
        if not self.sources:
            return True
        try:
            ip = ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.sources)

    def facilities_for(self, writer: asyncio.StreamWriter) -> frozenset[str] | None:
        if not self.facilities_by_subject:
            return None
        return self.facilities_by_subject.get(_subject_cn(writer), frozenset())


def _subject_cn(writer: asyncio.StreamWriter) -> str:
    """The commonName of the peer's verified certificate ('' without one)."""
    certificate = writer.get_extra_info("peercert") or {}
    for rdn in certificate.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def _keep_alive(writer: asyncio.StreamWriter, idle: int) -> None:
    """TCP keepalive, so a peer that vanished (a cut cable, a dropped NAT entry) is noticed."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


class MllpListener:
    """Many connections at once; on each, messages are answered in the order they came."""

    def __init__(
        self,
        intake: AdtIntake,
        *,
        max_bytes: int,
        limits: ConnectionLimits = ConnectionLimits(),
        senders: SenderRules = SenderRules(),
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._intake = intake
        self._senders = senders
        self._max_bytes = max_bytes
        self._limits = limits
        self._per_source: Counter[str] = Counter()
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

    def _admit(self, source: str) -> bool:
        """Whether this source may connect, and another connection fits the limits."""
        if not self._senders.admits(source):
            log.warning("mllp.connection_refused", reason="source", source=source)
            return False
        limits = self._limits
        if len(self._connections) >= limits.max_connections:
            log.warning("mllp.connection_refused", reason="total", source=source)
            return False
        if self._per_source[source] >= limits.max_per_source:
            log.warning("mllp.connection_refused", reason="per_source", source=source)
            return False
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) else "local"
        if not self._admit(source):
            writer.close()
            return
        self._connections.add(task)
        self._per_source[source] += 1
        _keep_alive(writer, self._limits.keepalive_seconds)
        try:
            await self._read_frames(task, reader, writer)
        except (TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            self._per_source[source] -= 1
            if not self._per_source[source]:
                del self._per_source[source]
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _read_frames(
        self, task: asyncio.Task[None], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Read and answer until the peer closes; a connection idle between frames for the
        idle timeout, or a frame not finished within its deadline, is dropped (a cut frame is
        never acknowledged: the sender resends it)."""
        loop = asyncio.get_running_loop()
        frames = MllpFrameReader(self._max_bytes)
        facilities = self._senders.facilities_for(writer)
        frame_started = 0.0
        while not self._closing:
            wait = self._limits.idle_timeout
            if frames.in_frame:
                wait = max(0.0, frame_started + self._limits.frame_deadline - loop.time())
            self._waiting.add(task)
            try:
                data = await asyncio.wait_for(reader.read(65536), wait)
            except TimeoutError:
                if frames.in_frame:
                    log.warning("mllp.frame_deadline_passed", seconds=self._limits.frame_deadline)
                raise
            finally:
                self._waiting.discard(task)
            if not data:
                return
            started_before = frames.frames_started
            for item in frames.feed(data):
                for reply in await self._answer(item, facilities):
                    writer.write(frame(reply))
                await writer.drain()
            if frames.frames_started != started_before:
                frame_started = loop.time()

    async def _answer(self, item: Framed, facilities: frozenset[str] | None) -> list[bytes]:
        """The replies one framed item is owed: none for an aborted frame (kept only)."""
        if isinstance(item, AbortedFrame):
            await self._keep_aborted(item.payload)
            return []
        if isinstance(item, FrameTooLarge):
            log.warning("mllp.frame_too_large", limit=item.limit)
            return (await self._intake.reject_oversized(item.head, item.limit)).wire()
        return list((await batch.answer(self._intake, item, facilities)).replies)

    async def _keep_aborted(self, payload: bytes) -> None:
        """A dead letter of the abandoned bytes, for the record; the sender is owed nothing
        and is not told (a failure to store it does not cost the connection: refuse answers
        a transient failure instead of raising, and that answer is dropped here)."""
        error = HL7Error(
            AckCode.REJECT,
            "frame aborted by a new start block before its end block: the sender never "
            "finished it, so it was not acknowledged",
            "MSH",
            0,
            SEGMENT_SEQUENCE_ERROR,
        )
        result = await self._intake.refuse(payload, error)
        if result.status != "rejected":  # the database may be away: nothing is owed
            log.warning("mllp.frame_aborted_not_kept", aborted_bytes=len(payload))
            return
        log.warning("mllp.frame_aborted", inbox_id=result.inbox_id, aborted_bytes=len(payload))


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """TLS when a certificate is given; mutual TLS (a client certificate signed by the
    configured CA, or no connection) when a client CA is given too."""
    if not settings.mllp_tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.mllp_tls_cert, settings.mllp_tls_key)
    if settings.mllp_tls_client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=settings.mllp_tls_client_ca)
    return context


def listener_for(intake: AdtIntake, settings: Settings) -> MllpListener:
    """The listener as configured: size limit, connection limits, TLS and who may send."""
    context = tls_context(settings)
    senders = SenderRules(
        sources=settings.mllp_source_networks,
        facilities_by_subject=settings.mllp_sender_facilities,
    )
    limits = ConnectionLimits(
        max_connections=settings.mllp_max_connections,
        max_per_source=settings.mllp_max_connections_per_source,
        idle_timeout=settings.mllp_idle_timeout_seconds,
        frame_deadline=settings.mllp_frame_deadline_seconds,
        keepalive_seconds=settings.mllp_keepalive_seconds,
    )
    return MllpListener(
        intake,
        max_bytes=settings.max_message_bytes,
        limits=limits,
        senders=senders,
        ssl_context=context,
    )
