"""Issue 19 item 5: a worker's liveness sees a stuck event loop and its readiness waits for
the worker to say it is ready; before, both probes read the Rust core's /metrics, which
answers before the worker has connected and while its event loop is blocked."""

from __future__ import annotations

import asyncio
import threading
import time
import urllib.error
import urllib.request

from tests.helpers import find_free_port
from workers.runtime.probes import serving_probes


def status_of(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


async def test_readiness_waits_for_the_process_to_say_so() -> None:
    port = find_free_port()
    async with serving_probes("127.0.0.1", port, stall_seconds=5) as probes:
        assert await asyncio.to_thread(status_of, port, "/healthz") == (200, "ok\n")
        assert (await asyncio.to_thread(status_of, port, "/readyz"))[0] == 503
        probes.ready = True
        assert await asyncio.to_thread(status_of, port, "/readyz") == (200, "ok\n")


async def test_a_blocked_event_loop_fails_liveness_while_it_lasts() -> None:
    port = find_free_port()
    seen: list[tuple[int, str]] = []
    async with serving_probes("127.0.0.1", port, stall_seconds=0.5) as probes:
        probes.ready = True
        await asyncio.sleep(0.1)  # one heartbeat
        probe = threading.Timer(2.0, lambda: seen.append(status_of(port, "/healthz")))
        probe.start()
        time.sleep(2.5)  # noqa: ASYNC251 - the stuck loop under test
        probe.join()
        ((status, text),) = seen
        assert status == 503 and text.startswith("event loop stalled for")
        await asyncio.sleep(0.1)  # the loop runs again: the next heartbeat heals it
        assert await asyncio.to_thread(status_of, port, "/healthz") == (200, "ok\n")
