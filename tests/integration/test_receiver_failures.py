"""Failures on carebridge's side are AR ("rejected for reasons unrelated to content; resend"),
never AE (which tells the sender to fix the message, and which engines park in an error
queue), and the answer comes within CAREBRIDGE_ACK_TIMEOUT_SECONDS even when PostgreSQL hangs
mid-query: the wait is bounded, not the driver's cancellation (issue 15 item 8)."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from temporalio.testing import WorkflowEnvironment

from store.db import create_pool
from tests.helpers import MllpClient, a03, msa, segment
from tests.integration.conftest import start_listener
from tests.integration.tcp_proxy import TcpProxy
from workers.runtime.services import Services
from workers.runtime.settings import Settings

BOUND = 2.0


async def test_a_frozen_database_gets_ar_within_the_bound_and_the_resend_gets_aa(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, database_url: str
) -> None:
    proxy = TcpProxy.for_url(database_url)
    await proxy.start()
    through = await create_pool(proxy.url_through(database_url), max_size=4)
    mine = settings.model_copy(update={"ack_timeout_seconds": BOUND})
    listener, port = await start_listener(Services.build(mine, through, temporal_env.client), mine)
    facility = f"FRZ{uuid.uuid4().hex[:6].upper()}"
    first = a03(facility=facility, control_id=f"{facility}-1")
    hung = a03(facility=facility, control_id=f"{facility}-2")
    sender = await MllpClient.connect(port)
    try:
        assert msa(await sender.exchange(first))[1] == "AA"
        proxy.freeze()
        started = asyncio.get_running_loop().time()
        refused = await sender.exchange(hung)
        waited = asyncio.get_running_loop().time() - started
        proxy.thaw()
        assert waited < BOUND + 2.5, waited  # the ERR note on the row is bounded too
        assert msa(refused)[1:3] == ["AR", f"{facility}-2"]
        err = segment(refused, "ERR")
        assert err is not None and "207" in err and "resend" in err
        for _ in range(40):  # the sender resends until AA
            resent = await sender.exchange(hung)
            if msa(resent)[1] == "AA":
                break
            await asyncio.sleep(0.25)
        assert msa(resent)[1:3] == ["AA", f"{facility}-2"]
    finally:
        proxy.thaw()
        await sender.close()
        await listener.close()
        await through.close()
        await proxy.close()
    rows = await pool.fetch(
        "SELECT status FROM adt_inbox WHERE sending_facility = $1 AND ack IS NOT NULL", facility
    )
    assert [row["status"] for row in rows] == ["processed", "processed"]  # stored, none twice
