"""MSH-10 is unique only within a sending application, and senders reset their counters: a
different message that reuses a control id is stored and answered for itself over MLLP,
never dropped behind the first one's ACK; only a byte-identical message (line endings
aside) is a retransmission. A site can refuse reused ids instead (AE, ERR 205)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from tests.helpers import MllpClient, a03, msa, segment
from tests.integration.conftest import RunningStack, copy_protocols, start_listener
from workers.runtime.services import Services
from workers.runtime.settings import Settings


def with_sending_application(raw: bytes, application: str) -> bytes:
    segments = raw.split(b"\r")
    fields = segments[0].split(b"|")
    fields[2] = application.encode()  # MSH-3 (MSH-1 is the separator itself)
    return b"\r".join([b"|".join(fields), *segments[1:]])


async def rows_of(pool: asyncpg.Pool, control_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT status, ack FROM adt_inbox WHERE control_id = $1 ORDER BY id",
        control_id,
    )


async def test_a_different_message_with_a_reused_control_id_is_stored_and_answered(
    stack: RunningStack, settings: Settings
) -> None:
    control = f"MSG{uuid.uuid4().hex[:8]}"
    facility = f"FAC{uuid.uuid4().hex[:6].upper()}"
    first = a03(facility=facility, visit="V-ONE", control_id=control, mrn="100001")
    other_patient = a03(facility=facility, visit="V-TWO", control_id=control, mrn="100002")
    other_sender = with_sending_application(first, "OTHERAPP")
    client = await MllpClient.connect(stack.mllp_port)
    try:
        replies = [await client.exchange(raw) for raw in (first, other_patient, other_sender)]
        retransmitted = await client.exchange(other_patient.replace(b"\r", b"\r\n"))
    finally:
        await client.close()
    assert [msa(reply)[1:3] for reply in replies] == [["AA", control]] * 3
    assert retransmitted == replies[1]  # the same message again: its stored ACK, byte for byte
    rows = await rows_of(stack.services.pool, control)
    # the third is the first discharge again, from another application: stored, and known
    assert [row["status"] for row in rows] == ["processed", "processed", "duplicate"]
    assert [row["ack"].rstrip("\r") for row in rows] == replies  # each answered for itself
    secret = settings.key_secret.get_secret_value()
    for visit in ("V-ONE", "V-TWO"):
        transition = keys.transition_id(keys.encounter_key(secret, facility, visit))
        row = await stack.services.pool.fetchrow(
            "SELECT transition_id FROM adt_inbox WHERE transition_id = $1", transition
        )
        assert row is not None, visit  # each discharge started its own transition


async def test_a_site_that_refuses_reused_control_ids_answers_ae_205_and_keeps_the_message(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    def refuse(site: dict[str, Any]) -> None:
        site["reused_control_ids"] = "refuse"

    mine = settings.model_copy(update={"protocols_dir": copy_protocols(tmp_path, refuse)})
    services = Services.build(mine, pool, temporal_env.client)
    listener, port = await start_listener(services, mine)
    control = f"MSG{uuid.uuid4().hex[:8]}"
    facility = f"FAC{uuid.uuid4().hex[:6].upper()}"
    client = await MllpClient.connect(port)
    try:
        accepted = await client.exchange(a03(facility=facility, visit="V1", control_id=control))
        refused = await client.exchange(a03(facility=facility, visit="V2", control_id=control))
    finally:
        await client.close()
        await listener.close()
    assert msa(accepted)[1:3] == ["AA", control]
    assert msa(refused)[1:3] == ["AE", control]
    err = segment(refused, "ERR")
    assert err is not None and "205" in err and "MSH^1^10" in err.replace("|", "^")
    rows = await rows_of(pool, control)
    assert [row["status"] for row in rows] == ["processed", "rejected"]
