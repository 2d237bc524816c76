"""What one sender can hold on the MLLP port (issue 18 item 11): connections in total and per
source address, a deadline per frame (one byte every few seconds no longer keeps a connection
open: before, the idle timer restarted on every read), and TCP keepalive on each connection."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.helpers import MllpClient, a03, find_free_port, msa
from tests.integration.conftest import RunningStack
from workers.listener import ConnectionLimits, MllpListener


@asynccontextmanager
async def limited(stack: RunningStack, limits: ConnectionLimits) -> AsyncIterator[int]:
    listener = MllpListener(stack.services.intake, max_bytes=1 << 20, limits=limits)
    port = find_free_port()
    await listener.start("127.0.0.1", port)
    try:
        yield port
    finally:
        await listener.close(grace_seconds=2)


async def closed_by_server(client: MllpClient, within: float) -> bool:
    """Whether the server closes the connection within `within` seconds."""
    try:
        return await asyncio.wait_for(client.reader.read(1), within) == b""
    except (TimeoutError, ConnectionError):
        return False


async def test_connections_past_the_per_source_limit_are_closed_and_a_freed_slot_is_reused(
    stack: RunningStack,
) -> None:
    async with limited(stack, ConnectionLimits(max_per_source=2)) as port:
        held = [await MllpClient.connect(port) for _ in range(2)]
        extra = await MllpClient.connect(port)
        assert await closed_by_server(extra, 2.0)
        await held[0].close()
        await asyncio.sleep(0.2)
        again = await MllpClient.connect(port)
        control = f"LIM{uuid.uuid4().hex[:8]}"
        assert msa(await again.exchange(a03(control_id=control)))[1:3] == ["AA", control]
        for client in (held[1], extra, again):
            await client.close()


async def test_connections_past_the_total_limit_are_closed(stack: RunningStack) -> None:
    async with limited(stack, ConnectionLimits(max_connections=1)) as port:
        first = await MllpClient.connect(port)
        second = await MllpClient.connect(port)
        assert await closed_by_server(second, 2.0)
        assert not await closed_by_server(first, 0.3)
        await first.close()
        await second.close()


async def test_a_frame_trickled_a_byte_at_a_time_is_cut_at_its_deadline(
    stack: RunningStack,
) -> None:
    limits = ConnectionLimits(idle_timeout=30.0, frame_deadline=1.0)
    async with limited(stack, limits) as port:
        client = await MllpClient.connect(port)
        raw = b"\x0b" + a03()
        started = asyncio.get_running_loop().time()
        cut = False
        for byte in raw[:40]:  # 0.15 s a byte: each read comes well inside the idle timeout
            try:
                await client.send_raw(bytes([byte]))
            except ConnectionError:
                cut = True
                break
            if await closed_by_server(client, 0.15):
                cut = True
                break
        elapsed = asyncio.get_running_loop().time() - started
        await client.close()
    assert cut and elapsed < 3.0, elapsed


async def test_each_connection_has_tcp_keepalive(stack: RunningStack) -> None:
    seen: list[int] = []
    listener = MllpListener(stack.services.intake, max_bytes=1 << 20)
    original = listener._read_frames

    async def spy(task, reader, writer):  # type: ignore[no-untyped-def]
        sock = writer.get_extra_info("socket")
        seen.append(sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
        await original(task, reader, writer)

    listener._read_frames = spy  # type: ignore[method-assign]
    port = find_free_port()
    await listener.start("127.0.0.1", port)
    try:
        client = await MllpClient.connect(port)
        control = f"KA{uuid.uuid4().hex[:8]}"
        assert msa(await client.exchange(a03(control_id=control)))[1] == "AA"
        await client.close()
    finally:
        await listener.close(grace_seconds=2)
    assert seen and seen[0] != 0
