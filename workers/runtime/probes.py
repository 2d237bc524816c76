"""A process's own liveness and readiness, served by a thread beside its event loop.

The worker had only the Rust core's /metrics, which answers before the worker has connected
and while its event loop is stuck. Here a heartbeat task stamps the time every second on
the loop; the thread answers /healthz 503 once the stamp is older than the stall limit (a
blocked loop cannot answer for itself, and a probe that only times out says nothing), and
/readyz 200 only once the process has said it is ready (the worker: its pollers are seen
on the task queue)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEARTBEAT_SECONDS = 1.0


class Probes:
    def __init__(self, stall_seconds: float) -> None:
        self.stall_seconds = stall_seconds
        self.ready = False
        self._beat = time.monotonic()

    def beat(self) -> None:
        self._beat = time.monotonic()

    def stalled_for(self) -> float:
        """Seconds the event loop is overdue for its heartbeat (0 while it keeps time)."""
        return max(0.0, time.monotonic() - self._beat - HEARTBEAT_SECONDS)

    def answer(self, path: str) -> tuple[int, str]:
        stalled = self.stalled_for()
        if path not in ("/healthz", "/readyz"):
            return 404, "not found"
        if stalled > self.stall_seconds:
            return 503, f"event loop stalled for {stalled:.1f} s"
        if path == "/readyz" and not self.ready:
            return 503, "not ready: not polling yet"
        return 200, "ok"


def _handler(probes: Probes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, text = probes.answer(self.path.split("?")[0])
            body = text.encode() + b"\n"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds are not news."""

    return Handler


async def _heartbeat(probes: Probes) -> None:
    while True:
        probes.beat()
        await asyncio.sleep(HEARTBEAT_SECONDS)


@contextlib.asynccontextmanager
async def serving_probes(host: str, port: int, stall_seconds: float) -> AsyncIterator[Probes]:
    """/healthz and /readyz on host:port while the block runs; set `.ready` when ready."""
    probes = Probes(stall_seconds)
    server = ThreadingHTTPServer((host, port), _handler(probes))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="probes", daemon=True)
    thread.start()
    beating = asyncio.create_task(_heartbeat(probes))
    try:
        yield probes
    finally:
        beating.cancel()
        server.shutdown()
        server.server_close()
