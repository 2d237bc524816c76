"""Real ER7 over a real TCP MLLP connection to the running listener, with the real Temporal
dev server and PostgreSQL: ACK codes, inbox rows, dead letters and workflow effects."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from ingest import example_messages
from schemas import keys
from schemas.transition import StepStatus, TransitionState, TransitionStatus
from tests.helpers import (
    MllpClient,
    a03,
    assert_eventually,
    inbox_rows_containing,
    msa,
    segment,
    transition_of,
    with_event,
)
from tests.integration.conftest import RunningStack
from workers.runtime.settings import Settings
from workflows.transition import TransitionWorkflow


async def state_of(env: WorkflowEnvironment, transition: str) -> TransitionState:
    handle = env.client.get_workflow_handle_for(
        TransitionWorkflow.run, keys.workflow_id(transition)
    )
    return await handle.query(TransitionWorkflow.get_state)


async def inbox_of(pool: asyncpg.Pool, control_id: str) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM adt_inbox WHERE control_id = $1 ORDER BY id", control_id)


async def test_example_messages_2_5_1_and_lf_separated_2_3_are_accepted(
    stack: RunningStack,
) -> None:
    home = example_messages.build("a03")
    # Another feed: v2.3, LF-separated, local New York time with its offset.
    home_health = replace(
        example_messages.build("a03-home-health", zone=ZoneInfo("America/New_York")),
        version="2.3",
        sending_application="MEDITECH",
    )
    client = await MllpClient.connect(stack.mllp_port)
    try:
        for message, separator in ((home, "\r"), (home_health, "\n")):
            raw = example_messages.render(message, separator).encode()
            ack = await client.exchange(raw)
            assert msa(ack)[1:3] == ["AA", message.control_id], ack
            rows = await inbox_of(stack.services.pool, message.control_id)
            assert rows[0]["status"] == "processed", rows[0]["status"]
    finally:
        await client.close()


async def test_bom_z_segment_and_v2_8_encoding_characters(stack: RunningStack) -> None:
    client = await MllpClient.connect(stack.mllp_port)
    try:
        bom = b"\xef\xbb\xbf" + a03(control_id="BOM-1")
        assert msa(await client.exchange(bom))[1:3] == ["AA", "BOM-1"]
        z = a03(control_id="ZSEG-1") + b"ZPD|1|site specific|42\r"
        assert msa(await client.exchange(z))[1:3] == ["AA", "ZSEG-1"]
        v28 = (
            a03(control_id="V28-1")
            .replace(b"MSH|^~\\&|", b"MSH|^~\\&#|")
            .replace(b"|P|2.5.1", b"|P|2.8")
        )
        ack = await client.exchange(v28)
        assert ack.startswith("MSH|^~\\&#|CAREBRIDGE|CB|EPIC|")
        assert msa(ack)[1:3] == ["AA", "V28-1"]
    finally:
        await client.close()


async def test_cancel_discharge_sequence_a01_a03_a13_a03(
    stack: RunningStack, temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    facility, visit = "SEQ1", "V-SEQ"
    client = await MllpClient.connect(stack.mllp_port)
    try:
        acks = []
        for trigger, control in (("A01", "S-A01"), ("A03", "S-A03"), ("A13", "S-A13")):
            raw = a03(facility=facility, visit=visit, mrn="MRN-SEQ", control_id=control)
            raw = raw if trigger == "A03" else with_event(raw, trigger)
            acks.append(await client.exchange(raw))
        transition = transition_of(settings, facility, visit)
        handle = temporal_env.client.get_workflow_handle(keys.workflow_id(transition))

        async def cancelled() -> None:
            assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

        await assert_eventually(cancelled)
        again = a03(facility=facility, visit=visit, mrn="MRN-SEQ", control_id="S-A03-2")
        acks.append(await client.exchange(again))
    finally:
        await client.close()

    assert [msa(a)[1] for a in acks] == ["AA", "AA", "AA", "AA"]
    assert "no transition in its readmission window" in msa(acks[0])[3]
    assert msa(acks[1])[3] == "transition started (discharge-home)"
    assert msa(acks[2])[3] == "A13 delivered to the transition"
    assert msa(acks[3])[3] == "transition started (discharge-home)"  # discharged for real
    state = await state_of(temporal_env, transition)
    assert state.status == TransitionStatus.ACTIVE and state.generation == 2

    async def projected() -> None:
        row = await stack.services.pool.fetchrow(
            "SELECT status, version FROM transitions WHERE transition_id = $1", transition
        )
        assert row is not None and row["status"] == "active" and row["version"] > 1_000_000

    await assert_eventually(projected)


async def test_duplicate_control_id_gets_the_same_ack_once_processed(stack: RunningStack) -> None:
    raw = a03(control_id="DUP-MLLP")
    client = await MllpClient.connect(stack.mllp_port)
    try:
        first, second = await client.exchange(raw), await client.exchange(raw)
    finally:
        await client.close()
    assert first == second and msa(first)[1] == "AA"
    assert len(await inbox_of(stack.services.pool, "DUP-MLLP")) == 1


async def test_readmission_then_cancelled_admission_and_a40_twice(
    stack: RunningStack, temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    facility = "READM"
    client = await MllpClient.connect(stack.mllp_port)
    try:
        index = await client.exchange(
            a03(facility=facility, visit="V-INDEX", mrn="OLD-MRN", control_id="R-A03")
        )
        assert msa(index)[1] == "AA"
        sent = datetime.now(UTC).strftime("%Y%m%d%H%M%S+0000")
        merge = (
            f"MSH|^~\\&|EPIC|{facility}|CAREBRIDGE|CB|{sent}||ADT^A40^ADT_A39|R-A40|P|2.5.1\r"
            f"EVN|A40|{sent}\rPID|1||NEW-MRN^^^{facility}^MR||DOE^JANE\r"
            f"MRG|OLD-MRN^^^{facility}^MR\r"
        ).encode()
        merged = await client.exchange(merge)
        assert msa(merged)[1] == "AA" and "1 encounter(s) moved" in msa(merged)[3]
        merged_again = await client.exchange(merge.replace(b"|R-A40|", b"|R-A40-2|"))
        assert msa(merged_again)[1] == "AA" and "0 encounter(s) moved" in msa(merged_again)[3]

        admit = with_event(
            a03(
                facility=facility,
                visit="V-READMIT",
                mrn="NEW-MRN",
                control_id="R-A01",
                discharged="",
                admitted=datetime.now(UTC) - timedelta(minutes=30),  # after the index discharge
            ),
            "A01",
        )
        readmitted = await client.exchange(admit)
        assert msa(readmitted)[3] == "readmission signalled to 1 transition(s)"
        transition = transition_of(settings, facility, "V-INDEX")

        async def stopped() -> None:
            state = await state_of(temporal_env, transition)
            assert state.readmitted_at is not None
            assert {s.status for s in state.steps} == {StepStatus.STOPPED}

        await assert_eventually(stopped)
        withdrawn = await client.exchange(
            with_event(admit.replace(b"|R-A01|", b"|R-A11|"), "A11", "ADT_A09").replace(
                b"ADT^A01^ADT_A01", b"ADT^A11^ADT_A09"
            )
        )
        assert msa(withdrawn)[1] == "AA"
    finally:
        await client.close()

    async def resumed() -> None:
        state = await state_of(temporal_env, transition)
        assert state.readmitted_at is None
        assert StepStatus.STOPPED not in {s.status for s in state.steps}

    await assert_eventually(resumed)


async def test_garbage_and_oversized_frames_are_dead_lettered_and_the_connection_survives(
    stack: RunningStack,
) -> None:
    marker = uuid.uuid4().hex
    limit = stack.services.settings.max_message_bytes
    client = await MllpClient.connect(stack.mllp_port)
    try:
        garbage = await client.exchange(f"\x00\x01 garbage {marker}".encode())
        assert msa(garbage)[1] == "AR" and segment(garbage, "ERR")
        huge = a03(control_id="HUGE-1") + b"ZXX|" + b"x" * (limit + 10) + b"\r"
        oversized = await client.exchange(huge)
        assert msa(oversized)[1] == "AR"
        assert "byte limit" in msa(oversized)[3]
        after = await client.exchange(a03(control_id="AFTER-HUGE"))
        assert msa(after)[1:3] == ["AA", "AFTER-HUGE"]
    finally:
        await client.close()
    pool = stack.services.pool
    kept = await inbox_rows_containing(pool, stack.services.field_cipher, marker.encode())
    assert [row["status"] for row in kept] == ["rejected"]
    assert await pool.fetchval(
        "SELECT count(*) FROM adt_dead_letters WHERE error LIKE '%byte limit%'"
    )


async def test_connection_dropped_mid_frame_records_nothing_and_others_are_served(
    stack: RunningStack,
) -> None:
    client = await MllpClient.connect(stack.mllp_port)
    partial = b"\x0b" + a03(control_id="CUT-1")[:60]
    await client.send_raw(partial)
    await client.close()
    await asyncio.sleep(0.2)
    assert await inbox_of(stack.services.pool, "CUT-1") == []
    other = await MllpClient.connect(stack.mllp_port)
    try:
        assert msa(await other.exchange(a03(control_id="CUT-2")))[1] == "AA"
    finally:
        await other.close()


async def test_many_connections_and_pipelined_messages_each_get_their_ack(
    stack: RunningStack,
) -> None:
    async def one_connection(n: int) -> list[str]:
        client = await MllpClient.connect(stack.mllp_port)
        try:
            ids = [f"PIPE-{n}-{i}" for i in range(5)]
            await client.send_raw(b"".join(b"\x0b" + a03(control_id=c) + b"\x1c\x0d" for c in ids))
            return [msa(await client.reply())[2] for _ in ids]
        finally:
            await client.close()

    results = await asyncio.gather(*(one_connection(n) for n in range(6)))
    assert results == [[f"PIPE-{n}-{i}" for i in range(5)] for n in range(6)]
