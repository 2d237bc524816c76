"""Who may send (issue 18 item 3): with CAREBRIDGE_MLLP_TLS_CLIENT_CA a sender must present a
client certificate that CA signed, and CAREBRIDGE_MLLP_TLS_SENDERS maps its subject to the
MSH-4 facilities it may send for; CAREBRIDGE_MLLP_ALLOWED_SOURCES limits the addresses."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from tests.helpers import MllpClient, a03, msa
from tests.integration.conftest import start_listener
from tests.tls_certificates import CertificateAuthority, Issued
from workers.runtime.services import Services
from workers.runtime.settings import Settings

ENGINE = "engine.hospital.test"


def client_context(ca: Path, identity: Issued | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    if identity is not None:
        context.load_cert_chain(identity.cert, identity.key)
    return context


async def tls_client(port: int, context: ssl.SSLContext) -> MllpClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    return MllpClient(reader, writer)


async def test_a_sender_needs_a_certificate_and_sends_only_for_its_facilities(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    ca = CertificateAuthority(tmp_path)
    server = ca.issue("carebridge.test", server=True)
    engine = ca.issue(ENGINE)
    (tmp_path / "rogue").mkdir()
    stranger = CertificateAuthority(tmp_path / "rogue", "rogue CA").issue(ENGINE)
    own, other = f"MTL{uuid.uuid4().hex[:6].upper()}", f"OTH{uuid.uuid4().hex[:6].upper()}"
    mine = settings.model_copy(
        update={
            "mllp_tls_cert": server.cert,
            "mllp_tls_key": server.key,
            "mllp_tls_client_ca": ca.cert,
            "mllp_tls_senders": f"{ENGINE}={own}",
        }
    )
    listener, port = await start_listener(Services.build(mine, pool, temporal_env.client), mine)
    try:
        sender = await tls_client(port, client_context(ca.cert, engine))
        try:
            allowed = await sender.exchange(a03(facility=own, control_id=f"{own}-1"))
            forged = await sender.exchange(a03(facility=other, control_id=f"{own}-2"))
        finally:
            await sender.close()
        for identity in (None, stranger):  # no certificate, or one another CA signed
            with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
                refused = await tls_client(port, client_context(ca.cert, identity))
                try:
                    await refused.exchange(a03(facility=own))
                finally:
                    await refused.close()
    finally:
        await listener.close()
    assert msa(allowed)[1:3] == ["AA", f"{own}-1"]
    assert msa(forged)[1:3] == ["AR", f"{own}-2"]
    assert "may not send for facility" in msa(forged)[3]


async def test_only_the_allowed_source_networks_may_connect(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    elsewhere = settings.model_copy(update={"mllp_allowed_sources": "10.20.0.0/16"})
    listener, port = await start_listener(
        Services.build(elsewhere, pool, temporal_env.client), elsewhere
    )
    try:
        client = await MllpClient.connect(port)
        assert await asyncio.wait_for(client.reader.read(1), 2) == b""  # closed at once
        await client.close()
    finally:
        await listener.close()
    local = settings.model_copy(update={"mllp_allowed_sources": "127.0.0.0/8"})
    listener, port = await start_listener(Services.build(local, pool, temporal_env.client), local)
    try:
        client = await MllpClient.connect(port)
        control = f"SRC{uuid.uuid4().hex[:8]}"
        assert msa(await client.exchange(a03(control_id=control)))[1:3] == ["AA", control]
        await client.close()
    finally:
        await listener.close()
