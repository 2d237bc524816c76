"""Operations on the ingest path: Temporal stopped and restarted under a sender, the message
browser, the facility allow-list and reprocessing a dead letter after the fix."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from ingest.intake import AdtIntake
from schemas import keys
from tests.helpers import MllpClient, a03, msa
from tests.integration.conftest import RunningStack, start_listener, start_server, stop_server
from workers.runtime.services import Services
from workers.runtime.settings import Settings


async def test_temporal_down_gets_ae_then_aa_when_back_without_duplicate(
    own_temporal: Settings, pool: asyncpg.Pool
) -> None:
    settings = own_temporal
    process, client = await start_server(settings)
    services = Services.build(settings, pool, client)
    listener, port = await start_listener(services, settings)
    raw = a03(facility="DOWNUP", visit="V-DOWN", control_id="DOWN-MLLP")
    try:
        await stop_server(process)
        sender = await MllpClient.connect(port)
        started = asyncio.get_running_loop().time()
        refused = await sender.exchange(raw)
        waited = asyncio.get_running_loop().time() - started
        assert msa(refused)[1:3] == ["AR", "DOWN-MLLP"]
        assert waited < settings.ack_timeout_seconds + 2  # bounded: no hang
        row = await pool.fetchrow("SELECT status FROM adt_inbox WHERE control_id = 'DOWN-MLLP'")
        assert row is not None and row["status"] == "received"

        process, _ = await start_server(settings)  # same database file: state survives
        for _ in range(30):  # the sender retries until it gets an AA
            accepted = await sender.exchange(raw)
            if msa(accepted)[1] == "AA":
                break
            await asyncio.sleep(0.5)
        assert msa(accepted)[1:4] == ["AA", "DOWN-MLLP", "transition started (discharge-home)"]
        again = await sender.exchange(raw)
        assert again == accepted  # retransmission: the same ACK, no second effect
        await sender.close()
        tid = keys.transition_id(
            keys.encounter_key(settings.key_secret.get_secret_value(), "DOWNUP", "V-DOWN")
        )
        runs = [wf async for wf in client.list_workflows(f"WorkflowId = '{keys.workflow_id(tid)}'")]
        assert len(runs) == 1
    finally:
        await listener.close()
        if process.returncode is None:
            await stop_server(process)


async def test_message_browser_lists_shows_and_reprocesses_after_the_fix(
    stack: RunningStack, settings: Settings
) -> None:
    facility = f"NEW{uuid.uuid4().hex[:6].upper()}"
    strict = AdtIntake(
        stack.services.pool,
        stack.services.client,
        task_queue=settings.task_queue,
        key_secret=settings.key_secret.get_secret_value(),
        library=stack.services.library,
        timeout_seconds=5,
        field_cipher=stack.services.field_cipher,
        blind_index=stack.services.blind_index,
        allowed_facilities=frozenset({"GENHOSP"}),
    )
    refused = await strict.handle(a03(facility=facility, control_id="ALLOW-1"))
    assert refused.code == "AR"
    assert f"sending facility {facility} is not allowed" in msa(refused.ack)[3]

    listing = await stack.http.get("/messages", params={"status": "rejected", "limit": 500})
    assert refused.inbox_id in [m["id"] for m in listing.json()]
    shown = (await stack.http.get(f"/messages/{refused.inbox_id}")).json()
    assert shown["status"] == "rejected" and shown["control_id"] == "ALLOW-1"
    assert shown["parsed"]["facility"] == facility
    assert shown["raw"].startswith("MSH|^~\\&|EPIC|")

    # The fix: this facility is now allowed (the stack's intake has no allow-list).
    redo = await stack.http.post(f"/messages/{refused.inbox_id}/reprocess")
    assert redo.status_code == 200, redo.text
    body = redo.json()
    assert body["ack_code"] == "AA" and body["reprocessed_from"] == refused.inbox_id
    original = (await stack.http.get(f"/messages/{refused.inbox_id}")).json()
    assert original["reprocessed_by"] == [body["inbox_id"]]
    assert original["status"] == "rejected"  # never rewritten, never deleted
    copy = (await stack.http.get(f"/messages/{body['inbox_id']}")).json()
    assert copy["decision"] == "transition started (discharge-home)"
    assert (await stack.http.get("/messages/999999999")).status_code == 404
