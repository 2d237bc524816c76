"""Enhanced mode (MSH-15/MSH-16) as HL7 v2.5 2.9.3 has it (issue 15 item 9): the commit ACK
is the one reply on the connection and says whether the message is stored; the application
ACK is a message of its own to the sender's inbound port (site.yaml application_acks), or on
the same connection only where the site says the sender expects it there."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment

from ingest.application_acks import ApplicationAckDelivery
from tests.helpers import MllpClient, a03, find_free_port, msa, with_field
from tests.integration.conftest import copy_protocols, start_listener
from workers.runtime.services import Services
from workers.runtime.settings import Settings


def enhanced(accept: str, application: str, **fields: str) -> tuple[bytes, str]:
    control = f"ENH{uuid.uuid4().hex[:10]}"
    raw = a03(control_id=control, **fields)
    raw = with_field(with_field(raw, "MSH", 15, accept), "MSH", 16, application)
    return raw, control


class SenderInbound:
    """The sender's own inbound MLLP port, where its application ACKs arrive."""

    def __init__(self) -> None:
        self.port = find_free_port()
        self.frames: asyncio.Queue[str] = asyncio.Queue()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # carebridge closes once its frame is written
        for chunk in data.split(b"\x1c\x0d"):
            if chunk.strip(b"\x0b"):
                await self.frames.put(chunk.strip(b"\x0b").decode())
        writer.close()


@asynccontextmanager
async def enhanced_listener(
    temporal_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    settings: Settings,
    tmp_path: Path,
    routes: list[dict[str, str]],
) -> AsyncIterator[tuple[int, ApplicationAckDelivery]]:
    def edit(site: dict[str, Any]) -> None:
        site["application_acks"] = routes

    mine = settings.model_copy(update={"protocols_dir": copy_protocols(tmp_path, edit)})
    services = Services.build(mine, pool, temporal_env.client)
    delivery = ApplicationAckDelivery(pool, attempts=2, first_delay=0.05, timeout=2)
    services.intake.application_acks = delivery
    listener, port = await start_listener(services, mine)
    try:
        yield port, delivery
    finally:
        await listener.close()
        await delivery.close()


async def ack_status(pool: asyncpg.Pool, control: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT application_ack_status, application_ack_to, application_ack_attempts, "
        "application_ack_error, ack FROM adt_inbox WHERE control_id = $1",
        control,
    )
    assert row is not None
    return row


async def committed_alone(port: int, raw: bytes, control: str) -> None:
    """The message gets CA as the one reply on its connection, and nothing else follows."""
    client = await MllpClient.connect(port)
    try:
        assert msa(await client.exchange(raw))[1:3] == ["CA", control]
        await assert_nothing_more(client)
    finally:
        await client.close()


async def assert_nothing_more(client: MllpClient) -> None:
    """The next reply on the connection answers the next message: nothing else is pending."""
    probe, control = enhanced("AL", "NE")
    assert msa(await client.exchange(probe))[1:3] == ["CA", control]


async def test_the_commit_ack_is_the_one_reply_and_the_application_ack_goes_to_the_sender(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    inbound = SenderInbound()
    await inbound.start()
    routes = [{"sending_application": "EPIC", "deliver_to": f"127.0.0.1:{inbound.port}"}]
    try:
        async with enhanced_listener(temporal_env, pool, settings, tmp_path, routes) as (
            port,
            delivery,
        ):
            raw, control = enhanced("AL", "AL")
            await committed_alone(port, raw, control)
            application = await asyncio.wait_for(inbound.frames.get(), 10)
            await delivery.wait_idle()
    finally:
        await inbound.close()
    assert msa(application)[1:3] == ["AA", control]
    row = await ack_status(pool, control)
    assert (row["application_ack_status"], row["application_ack_attempts"]) == ("sent", 1)
    assert row["ack"] == application  # the stored ACK is the one delivered


async def test_a_stored_message_that_fails_processing_gets_ca_then_ae_and_er_er_gives_ae_alone(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    inbound = SenderInbound()
    await inbound.start()
    routes = [{"deliver_to": f"127.0.0.1:{inbound.port}"}]
    always, always_control = enhanced("AL", "AL")
    errors_only, errors_control = enhanced("ER", "ER")
    always = with_field(always, "PV1", 19, "")  # an A03 without a visit number: AE
    errors_only = with_field(errors_only, "PV1", 19, "")
    try:
        async with enhanced_listener(temporal_env, pool, settings, tmp_path, routes) as (port, _):
            client = await MllpClient.connect(port)
            try:
                assert msa(await client.exchange(always))[1:3] == ["CA", always_control]
                await client.send_raw(b"\x0b" + errors_only + b"\x1c\x0d")  # stored: no CA
                await assert_nothing_more(client)
            finally:
                await client.close()
            delivered = [await asyncio.wait_for(inbound.frames.get(), 10) for _ in range(2)]
    finally:
        await inbound.close()
    assert sorted(msa(ack)[1:3] for ack in delivered) == sorted(
        [["AE", always_control], ["AE", errors_control]]
    )


async def test_unsupported_version_is_cr_and_a_sender_expecting_acks_on_the_connection_gets_both(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    routes = [{"sending_application": "EPIC", "deliver_to": "connection"}]
    accepted, accepted_control = enhanced("AL", "AL")
    old, old_control = enhanced("AL", "AL")
    old = with_field(old, "MSH", 12, "2.1")
    async with enhanced_listener(temporal_env, pool, settings, tmp_path, routes) as (port, _):
        client = await MllpClient.connect(port)
        try:
            await client.send_raw(b"\x0b" + accepted + b"\x1c\x0d")
            commit, application = await client.reply(), await client.reply()
            await client.send_raw(b"\x0b" + old + b"\x1c\x0d")
            rejected, refused = await client.reply(), await client.reply()
        finally:
            await client.close()
    assert msa(commit)[1:3] == ["CA", accepted_control]
    assert msa(application)[1:3] == ["AA", accepted_control]
    assert msa(rejected)[1:3] == ["CR", old_control]  # MSH-12 unacceptable: commit reject
    assert msa(refused)[1:3] == ["AR", old_control]


async def test_an_unreachable_sender_is_retried_a_bounded_number_of_times_and_recorded(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    routes = [{"deliver_to": f"127.0.0.1:{find_free_port()}"}]  # nobody listens there
    raw, control = enhanced("AL", "AL")
    async with enhanced_listener(temporal_env, pool, settings, tmp_path, routes) as (
        port,
        delivery,
    ):
        client = await MllpClient.connect(port)
        try:
            assert msa(await client.exchange(raw))[1:3] == ["CA", control]
        finally:
            await client.close()
        await asyncio.wait_for(delivery.wait_idle(), 10)
    row = await ack_status(pool, control)
    assert (row["application_ack_status"], row["application_ack_attempts"]) == ("failed", 2)
    assert "ConnectionRefusedError" in row["application_ack_error"]


async def test_without_a_configured_destination_the_application_ack_is_kept(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    raw, control = enhanced("AL", "AL")
    async with enhanced_listener(temporal_env, pool, settings, tmp_path, []) as (port, delivery):
        await committed_alone(port, raw, control)
        await delivery.wait_idle()
    row = await ack_status(pool, control)
    assert (row["application_ack_status"], row["application_ack_to"]) == ("kept", "none")
