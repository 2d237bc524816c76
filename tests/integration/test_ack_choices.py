"""The acknowledgment each case gets over MLLP (issue 15 items 5, 7, 12 and 15): visit numbers
from the site's fallback fields, processing ids, a patient identifier the site's rule does not
name, and an ACK header that echoes the sender's whole MSH-3..6 in its version's MSH-9."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from tests.helpers import MllpClient, a03, msa, segment, with_event, with_field
from tests.integration.conftest import RunningStack, copy_protocols, start_listener
from workers.runtime.services import Services
from workers.runtime.settings import Settings


def fresh() -> tuple[str, str]:
    return f"FAC{uuid.uuid4().hex[:6].upper()}", f"C{uuid.uuid4().hex[:12]}"


async def row_of(pool: asyncpg.Pool, control: str) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT status, ack_code, decision, transition_id FROM adt_inbox WHERE control_id = $1",
        control,
    )
    assert row is not None, control
    return row


def msh(ack: str) -> list[str]:
    found = segment(ack, "MSH")
    assert found is not None
    return found.split("|")


def err_fields(ack: str) -> list[str]:
    found = segment(ack, "ERR")
    assert found is not None, ack
    return found.split("|")


async def exchange(port: int, *messages: bytes) -> list[str]:
    client = await MllpClient.connect(port)
    try:
        return [await client.exchange(raw) for raw in messages]
    finally:
        await client.close()


@asynccontextmanager
async def listener_with_site(
    temporal_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    settings: Settings,
    tmp_path: Path,
    edit: Callable[[dict[str, Any]], None],
    **overrides: Any,
) -> AsyncIterator[int]:
    """An MLLP listener (no worker: refusals never reach a workflow) with an edited site."""
    mine = settings.model_copy(
        update={"protocols_dir": copy_protocols(tmp_path, edit), **overrides}
    )
    listener, port = await start_listener(Services.build(mine, pool, temporal_env.client), mine)
    try:
        yield port
    finally:
        await listener.close()


# Item 5: the visit number


async def test_an_admission_without_a_visit_number_is_recorded_with_aa(
    stack: RunningStack,
) -> None:
    facility, control = fresh()
    admission = with_field(
        with_event(a03(facility=facility, control_id=control), "A01"), "PV1", 19, ""
    )
    [reply] = await exchange(stack.mllp_port, admission)
    assert msa(reply)[1:3] == ["AA", control]
    row = await row_of(stack.services.pool, control)
    assert row["status"] != "rejected" and row["ack_code"] == "AA"
    assert row["decision"]  # the decision is stored with the message


async def test_a_discharge_keyed_by_pid_18_when_pv1_19_is_empty(
    stack: RunningStack, settings: Settings
) -> None:
    facility, control = fresh()
    raw = with_field(a03(facility=facility, control_id=control), "PV1", 19, "")
    raw = with_field(raw, "PID", 18, "ACCT-77^^^" + facility)
    [reply] = await exchange(stack.mllp_port, raw)
    assert msa(reply)[1:4] == ["AA", control, "transition started (discharge-home)"]
    expected = keys.transition_id(
        keys.encounter_key(settings.key_secret.get_secret_value(), facility, "ACCT-77")
    )
    assert (await row_of(stack.services.pool, control))["transition_id"] == expected


async def test_a_discharge_without_any_visit_number_is_ae_naming_pv1_19(
    stack: RunningStack,
) -> None:
    facility, control = fresh()
    [reply] = await exchange(
        stack.mllp_port, with_field(a03(facility=facility, control_id=control), "PV1", 19, "")
    )
    assert msa(reply)[1:3] == ["AE", control]
    assert err_fields(reply)[2] == "PV1^1^19"
    assert (await row_of(stack.services.pool, control))["status"] == "rejected"


# Item 7: processing id


def production_only(site: dict[str, Any]) -> None:
    site["processing_ids"] = ["P"]


async def test_a_training_message_is_refused_ar_202_where_only_production_is_accepted(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    facility, control = fresh()
    training = with_field(a03(facility=facility, control_id=control), "MSH", 11, "T")
    async with listener_with_site(temporal_env, pool, settings, tmp_path, production_only) as port:
        [reply] = await exchange(port, training)
    assert msa(reply)[1:3] == ["AR", control]
    err = err_fields(reply)
    assert err[2] == "MSH^1^11" and err[3].startswith("202^")
    row = await row_of(pool, control)
    assert (row["status"], row["ack_code"]) == ("rejected", "AR")  # kept


async def test_production_accepts_only_p_by_default_and_development_accepts_t_and_d(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    def unchanged(site: dict[str, Any]) -> None:
        pass

    facility, control = fresh()
    debugging = with_field(a03(facility=facility, control_id=control), "MSH", 11, "D")
    async with listener_with_site(
        temporal_env, pool, settings, tmp_path, unchanged, environment="production"
    ) as port:
        [refused] = await exchange(port, debugging)
    assert msa(refused)[1:3] == ["AR", control]
    assert err_fields(refused)[3].startswith("202^")
    _, other = fresh()
    async with listener_with_site(
        temporal_env, pool, settings, tmp_path / "dev", unchanged
    ) as port:
        [accepted] = await exchange(port, with_field(debugging, "MSH", 10, other))
    assert msa(accepted)[1:3] == ["AA", other]


# Item 12: the patient identifier


def social_security_only(raw: bytes) -> bytes:
    return with_field(raw, "PID", 3, "123-45-6789^^^SSA^SS")


async def test_no_matching_patient_identifier_is_a_recorded_decision(
    stack: RunningStack,
) -> None:
    facility, control = fresh()
    [reply] = await exchange(
        stack.mllp_port, social_security_only(a03(facility=facility, control_id=control))
    )
    assert msa(reply)[1:3] == ["AA", control]
    warning = "no PID-3 repetition matches the site's patient_identifier (type MR)"
    assert warning in msa(reply)[3]
    assert warning in (await row_of(stack.services.pool, control))["decision"]


async def test_a_site_that_refuses_unmatched_identifiers_answers_ae_204_on_pid_3(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    def refuse(site: dict[str, Any]) -> None:
        site["unmatched_patient_identifier"] = "refuse"

    facility, control = fresh()
    async with listener_with_site(temporal_env, pool, settings, tmp_path, refuse) as port:
        [reply] = await exchange(
            port, social_security_only(a03(facility=facility, control_id=control))
        )
    assert msa(reply)[1:3] == ["AE", control]
    err = err_fields(reply)
    assert err[2] == "PID^1^3" and err[3].startswith("204^")
    assert (await row_of(pool, control))["status"] == "rejected"


# Item 15: the ACK's header


async def test_the_ack_echoes_whole_hd_fields_and_a_universal_id_only_facility_is_accepted(
    stack: RunningStack,
) -> None:
    _, control = fresh()
    universal = f"1.2.840.{uuid.uuid4().int % 10**9}"
    raw = with_field(a03(control_id=control), "MSH", 3, "EPIC^1.2.840.1^ISO")
    raw = with_field(raw, "MSH", 4, f"^{universal}^ISO")
    raw = with_field(raw, "MSH", 5, "CAREBRIDGE^1.2.3^ISO")
    [reply] = await exchange(stack.mllp_port, raw)
    assert msa(reply)[1:3] == ["AA", control]
    header = msh(reply)
    assert header[2:6] == ["CAREBRIDGE^1.2.3^ISO", "CB", "EPIC^1.2.840.1^ISO", f"^{universal}^ISO"]


async def test_a_v23_ack_has_a_two_part_msh_9(stack: RunningStack) -> None:
    facility, control = fresh()
    older = with_field(a03(facility=facility, control_id=control), "MSH", 12, "2.3")
    newer = with_field(a03(facility=facility), "MSH", 12, "2.3.1")
    v23, v231 = await exchange(stack.mllp_port, older, newer)
    assert msh(v23)[8] == "ACK^A03" and msh(v23)[11] == "2.3"
    assert msh(v231)[8] == "ACK^A03^ACK"


async def test_an_oversized_message_is_refused_without_a_field_location(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    facility, control = fresh()
    big = a03(facility=facility, control_id=control) + b"NTE|1||" + b"x" * 4096 + b"\r"
    async with listener_with_site(
        temporal_env, pool, settings, tmp_path, lambda site: None, max_message_bytes=2048
    ) as port:
        [reply] = await exchange(port, big)
    assert msa(reply)[1:3] == ["AR", control]
    err = err_fields(reply)
    assert err[2] == "" and err[3].startswith("207^")  # no MSH^1^0: the message as a whole


async def test_the_v27_truncation_character_is_escaped_in_ack_text(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    facility, control = fresh()
    raw = with_field(a03(facility=facility, control_id=control), "MSH", 2, "^~\\&#")
    raw = with_field(with_field(raw, "MSH", 12, "2.7"), "MSH", 11, "T#")
    async with listener_with_site(temporal_env, pool, settings, tmp_path, production_only) as port:
        [reply] = await exchange(port, raw)
    assert msa(reply)[1] == "AR"
    assert "T\\P\\" in msa(reply)[3] and "#" not in reply.split("\r", 1)[1]
