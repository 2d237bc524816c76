"""ADT intake end to end on the real Temporal dev server and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from ingest.intake import AdtIntake
from schemas import keys
from schemas.transition import TransitionState
from store import inbox as store_inbox
from tests.helpers import a03, assert_eventually, inbox_rows_containing, msa, segment, transition_of
from tests.integration.conftest import RunningStack
from workers.listener import END_BLOCK, frame
from workers.runtime.embedded import find_binary
from workers.runtime.settings import Settings
from workers.runtime.temporal import DATA_CONVERTER
from workflows import search_attributes

REFERRAL_DOMAINS = ("housing", "food", "transportation", "utilities", "safety")


async def inbox_rows(pool: asyncpg.Pool, facility: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM adt_inbox WHERE sending_facility = $1 ORDER BY id", facility
    )


async def test_a03_over_http_starts_the_workflow_and_writes_the_projection(
    stack: RunningStack, temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    raw = a03(facility="GENHOSP1", visit="V555", control_id="CTRL-HTTP-1", mrn="MRN98765")
    response = await stack.post_adt(raw)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("x-application/hl7-v2+er7")
    assert msa(response.text)[1:3] == ["AA", "CTRL-HTTP-1"]

    tid = transition_of(settings, "GENHOSP1", "V555")
    handle = temporal_env.client.get_workflow_handle(keys.workflow_id(tid))
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    # No PHI in the workflow id or in search attributes (invariant 6).
    for phi in ("V555", "MRN98765", "DOE", "19480312"):
        assert phi not in description.id
        assert phi not in str(description.typed_search_attributes)

    async def projected() -> asyncpg.Record:
        row = await stack.services.pool.fetchrow(
            "SELECT * FROM transitions WHERE transition_id = $1", tid
        )
        assert row is not None
        assert row["status"] == "active"
        assert row["current_step"] == "interactive_contact"
        return row

    row = await assert_eventually(projected)
    assert row["facility"] == "GENHOSP1"
    assert row["protocol_id"] == "discharge-home"
    assert row["next_due_at"] is not None

    state = await handle.query("get_state", result_type=TransitionState)
    referrals = {
        f"referral_{d}" for d in ("housing", "food", "transportation", "utilities", "safety")
    }
    assert {s.step_id for s in state.steps} == {
        "interactive_contact",
        "medication_reconciliation",
        "follow_up_visit",
        "social_needs_screening",
        *referrals,
    }
    inbox = await inbox_rows(stack.services.pool, "GENHOSP1")
    assert [(r["status"], r["ack_code"], r["transition_id"]) for r in inbox] == [
        ("processed", "AA", tid)
    ]
    assert inbox[0]["raw"] is None  # stored only sealed
    assert store_inbox.open_raw(stack.services.field_cipher, inbox[0]) == raw

    async def searchable() -> None:
        found = [
            wf.id
            async for wf in temporal_env.client.list_workflows(
                f"WorkflowId = '{keys.workflow_id(tid)}' AND CbStatus = 'active'"
            )
        ]
        assert found == [keys.workflow_id(tid)]

    await assert_eventually(searchable)


async def test_retransmitted_a03_gets_the_same_ack_and_starts_nothing_new(
    stack: RunningStack, temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    raw = a03(facility="GENHOSP2", visit="V1", control_id="CTRL-RETX")
    first = await stack.post_adt(raw)
    second = await stack.post_adt(raw)

    assert msa(first.text)[1] == "AA"
    assert second.text == first.text
    assert len(await inbox_rows(stack.services.pool, "GENHOSP2")) == 1
    tid = transition_of(settings, "GENHOSP2", "V1")
    runs = [
        wf
        async for wf in temporal_env.client.list_workflows(
            f"WorkflowId = '{keys.workflow_id(tid)}'"
        )
    ]
    assert len(runs) == 1


async def test_second_a03_for_the_same_visit_starts_no_second_transition(
    stack: RunningStack, temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    first = await stack.post_adt(a03(facility="GENHOSP3", visit="V2", control_id="A"))
    again = await stack.post_adt(a03(facility="GENHOSP3", visit="V2", control_id="B"))

    assert msa(first.text)[1:3] == ["AA", "A"]
    assert msa(again.text)[1:4] == ["AA", "B", "transition already exists"]
    rows = await inbox_rows(stack.services.pool, "GENHOSP3")
    tid = transition_of(settings, "GENHOSP3", "V2")
    assert [(r["status"], r["transition_id"]) for r in rows] == [
        ("processed", tid),
        ("duplicate", tid),
    ]
    desc = await temporal_env.client.get_workflow_handle(keys.workflow_id(tid)).describe()
    assert desc.status == WorkflowExecutionStatus.RUNNING


async def test_garbage_gets_an_ar_ack_not_a_500_and_is_kept(stack: RunningStack) -> None:
    marker = uuid.uuid4().hex.encode()
    response = await stack.post_adt(b"this is not HL7 " + marker)

    assert response.status_code == 200
    assert msa(response.text)[1] == "AR"
    assert segment(response.text, "ERR") is not None
    [row] = await inbox_rows_containing(stack.services.pool, stack.services.field_cipher, marker)
    assert row["status"] == "rejected"
    assert "MSH" in row["error"]


async def test_a03_without_visit_number_gets_ae_naming_the_field(stack: RunningStack) -> None:
    raw = a03(facility="GENHOSP4", visit="X", control_id="NOVISIT").replace(b"X^^^", b"^^^")
    response = await stack.post_adt(raw)

    assert msa(response.text)[1:3] == ["AE", "NOVISIT"]
    err = segment(response.text, "ERR")
    assert err is not None and "PV1^1^19" in err
    rows = await inbox_rows(stack.services.pool, "GENHOSP4")
    assert [(r["status"], r["ack_code"]) for r in rows] == [("rejected", "AE")]


async def test_non_er7_body_gets_a_json_problem(stack: RunningStack) -> None:
    response = await stack.http.post("/adt", json={"hello": "world"})
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert "x-application/hl7-v2+er7" in response.json()["detail"]


async def test_steps_complete_through_the_api_and_a_repeat_is_a_409(
    stack: RunningStack, settings: Settings
) -> None:
    await stack.post_adt(a03(facility="GENHOSP5", visit="V5"))
    tid = transition_of(settings, "GENHOSP5", "V5")
    url = f"/transitions/{tid}/steps/interactive_contact/complete"

    nurse = await stack.as_person("rn.alvarez")
    done = await stack.http.post(url, headers=nurse, json={"outcome": "reached patient"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    assert done.json()["completed_by"] == "rn.alvarez"
    again = await stack.http.post(url, headers=nurse, json={})
    assert again.status_code == 409
    assert "already completed" in again.json()["detail"]
    blank = await stack.http.post(url, headers=nurse, json={"outcome": ""})
    assert blank.status_code == 422

    async def projected() -> None:
        # filtered by facility: on a busy shared database the first page may not hold it
        row = await stack.http.get(
            "/transitions", params={"status": "active", "facility": "GENHOSP5"}
        )
        mine = [t for t in row.json() if t["transition_id"] == tid]
        assert mine and mine[0]["current_step"] == "social_needs_screening"  # next due

    await assert_eventually(projected)
    state = (await stack.http.get(f"/transitions/{tid}")).json()
    assert {s["step_id"]: s["status"] for s in state["steps"]} == {
        "interactive_contact": "completed",
        "medication_reconciliation": "open",
        "follow_up_visit": "open",
        "social_needs_screening": "open",
    } | {
        f"referral_{d}": "pending"
        for d in ("housing", "food", "transportation", "utilities", "safety")
    }
    assert (await stack.http.get("/transitions/000000000000000000000000")).status_code == 404


async def test_a03_over_mllp_is_acked_aa(stack: RunningStack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.mllp_port)
    try:
        writer.write(frame(a03(control_id="MLLP-1")) + frame(a03(control_id="MLLP-2")))
        await writer.drain()
        acks = [await reader.readuntil(END_BLOCK) for _ in range(2)]
    finally:
        writer.close()
        await writer.wait_closed()
    texts = [ack.strip(b"\x0b\x1c\r").decode() for ack in acks]
    assert [msa(t)[1:3] for t in texts] == [["AA", "MLLP-1"], ["AA", "MLLP-2"]]


async def test_temporal_unavailable_gets_ae_and_the_retransmission_succeeds(
    stack: RunningStack, temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    doomed = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_binary("temporal"),
        data_converter=DATA_CONVERTER,
        search_attributes=search_attributes.ALL,
    )
    client = doomed.client
    await doomed.shutdown()
    unreachable = AdtIntake(
        stack.services.pool,
        client,
        task_queue=settings.task_queue,
        key_secret=settings.key_secret.get_secret_value(),
        library=stack.services.library,
        timeout_seconds=2.0,
        field_cipher=stack.services.field_cipher,
        blind_index=stack.services.blind_index,
    )
    raw = a03(facility="GENHOSP6", visit="V6", control_id="DOWN-1")

    result = await unreachable.handle(raw)
    assert result.code == "AR"
    assert msa(result.ack)[1:3] == ["AR", "DOWN-1"]
    rows = await inbox_rows(stack.services.pool, "GENHOSP6")
    assert [(r["status"], r["ack"]) for r in rows] == [("received", None)]
    assert "resend" in rows[0]["error"]

    retried = await stack.post_adt(raw)
    assert msa(retried.text)[1:4] == ["AA", "DOWN-1", "transition started (discharge-home)"]
    rows = await inbox_rows(stack.services.pool, "GENHOSP6")
    assert [r["status"] for r in rows] == ["processed"]


async def test_migrations_are_recorded_and_idempotent(pool: asyncpg.Pool) -> None:
    from store.migrate import available_migrations, migrate

    assert await migrate(pool) == []
    recorded = [r["version"] for r in await pool.fetch("SELECT version FROM schema_migrations")]
    assert recorded == [m.version for m in available_migrations()]
