"""The MLLP listener: frames in (0x0B ... 0x1C 0x0D), one intake per message, ACK frames out.

Messages on one connection are handled in order; connections are independent.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from ingest.intake import AdtIntake

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"

log = structlog.get_logger(__name__)


def frame(payload: bytes) -> bytes:
    return START_BLOCK + payload + END_BLOCK


class FrameTooLarge(Exception):
    pass


class MllpFrameReader:
    """Accumulates bytes and yields complete MLLP payloads (handles split and pipelined frames)."""

    def __init__(self, max_bytes: int) -> None:
        self._buffer = bytearray()
        self._max_bytes = max_bytes

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer.extend(data)
        payloads = []
        while True:
            end = self._buffer.find(END_BLOCK)
            if end < 0:
                break
            chunk = bytes(self._buffer[:end])
            del self._buffer[: end + len(END_BLOCK)]
            start = chunk.find(START_BLOCK)
            if start >= 0:  # bytes before the start block are line noise
                payloads.append(chunk[start + 1 :])
        if len(self._buffer) > self._max_bytes:
            raise FrameTooLarge(f"frame exceeds {self._max_bytes} bytes")
        return payloads


class MllpListener:
    def __init__(self, intake: AdtIntake, *, max_bytes: int, idle_timeout: float = 300.0) -> None:
        self._intake = intake
        self._max_bytes = max_bytes
        self._idle_timeout = idle_timeout
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> asyncio.Server:
        self._server = await asyncio.start_server(self._serve, host, port)
        return self._server

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frames = MllpFrameReader(self._max_bytes)
        try:
            while True:
                data = await asyncio.wait_for(reader.read(65536), self._idle_timeout)
                if not data:
                    break
                for payload in frames.feed(data):
                    result = await self._intake.handle(payload)
                    writer.write(frame(result.ack.encode()))
                    await writer.drain()
        except FrameTooLarge as exc:
            log.warning("mllp.frame_too_large", reason=str(exc))
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
