"""The escalation webhook's far end in a run with `--faults`: a small local HTTP server that
answers 200, or 503 while the fault holds it down, and logs every request it got (the
idempotency key, the answer) so the invariants can check no page was delivered twice."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

MAX_HEADERS = 64 * 1024
MAX_BODY = 1024 * 1024


@dataclass(frozen=True)
class WebhookRequest:
    idempotency_key: str
    status: int


@dataclass
class FlakyWebhook:
    """`failing`: answer 503 (the fault's simulated day); else 200."""

    failing: bool = False
    requests: list[WebhookRequest] = field(default_factory=list)
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the webhook is not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/hook"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def delivered(self) -> list[str]:
        """The idempotency keys answered 200, once each time they were."""
        return [r.idempotency_key for r in self.requests if r.status == 200]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request on a kept-alive connection; False once the client has closed it."""
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEADERS:
            return False
        headers = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = min(int(headers.get("content-length", "0") or 0), MAX_BODY)
        await reader.readexactly(length)
        status = 503 if self.failing else 200
        self.requests.append(WebhookRequest(headers.get("idempotency-key", ""), status))
        reason = "Service Unavailable" if status == 503 else "OK"
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n".encode("latin-1"))
        await writer.drain()
        return True
