"""Key rotation: a transition started under key A completes after key B became current (real
dev server); PHI at rest written under key A reads under key B alone after `keys reencrypt`."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import asyncpg
import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from schemas.protocol_library import load_library
from schemas.transition import AdtSignal, TransitionStatus
from store import inbox, registry
from store.encryption import FieldCipher, SealError
from tests.helpers import a03, inbox_rows_with_raw, start_direct
from tests.integration.conftest import run_cli
from tests.workflow.support import PROTOCOLS_DIR
from workers.runtime.codec import KEY_ID, Keyring
from workers.runtime.services import Services
from workers.runtime.settings import Settings
from workers.runtime.temporal import data_converter
from workers.worker import build_worker
from workflows.transition import TransitionWorkflow


async def test_transition_started_under_key_a_completes_under_key_b(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    key_a = Keyring.generate("a")
    key_b = Keyring(keys={**key_a.keys, "b": Keyring.generate("b").keys["b"]}, current="b")
    config = temporal_env.client.config()
    client_a = Client(**{**config, "data_converter": data_converter(key_a)})
    client_b = Client(**{**config, "data_converter": data_converter(key_b)})
    library = load_library(PROTOCOLS_DIR)
    async with build_worker(client_a, pool, settings):
        handle_a = await start_direct(
            client_a,
            settings.task_queue,
            library.latest("discharge-home"),
            facility="ROTATE",
            discharged_at=datetime.now(UTC),
        )
        workflow_id = handle_a.id
        state = await handle_a.query(TransitionWorkflow.get_state)
        assert state.status == TransitionStatus.ACTIVE
    async with build_worker(client_b, pool, settings):
        handle_b = client_b.get_workflow_handle_for(TransitionWorkflow.run, workflow_id)
        await handle_b.signal(
            TransitionWorkflow.adt_event,
            AdtSignal(event_type="A13", message_control_id="ROT-1", occurred_at=datetime.now(UTC)),
        )
        final = await handle_b.result()
    assert final.status == TransitionStatus.CANCELLED
    history = await handle_b.fetch_history()
    # Local activities' results are recorded in markers: what was written under key a before
    # the rotation and under key b after it both decode.
    used = {
        p.metadata[KEY_ID].decode()
        for event in history.events
        if event.HasField("marker_recorded_event_attributes")
        for payloads in event.marker_recorded_event_attributes.details.values()
        for p in payloads.payloads
        if KEY_ID in p.metadata
    }
    assert used == {"a", "b"}


async def test_registry_and_inbox_rows_under_key_a_read_under_key_b_after_keys_reencrypt(
    temporal_env: WorkflowEnvironment, own_pool: asyncpg.Pool, own_database: str, settings: Settings
) -> None:
    key_a = Keyring.generate("a")
    key_b = Keyring.generate("b")
    both = f"{spec(key_a)},{spec(key_b)}"  # b is current (the last one)
    under_a = settings.model_copy(update={"codec_keys": SecretStr(spec(key_a))})
    services = Services.build(under_a, own_pool, temporal_env.client)
    raw = a03(facility="REKEY", visit="V-REKEY", mrn="MRN-REKEY-1")
    assert (await services.intake.handle(raw)).code == "AA"
    [patient_key] = await registry.search(own_pool, services.blind_index, "MRN-REKEY-1")
    [row] = await inbox_rows_with_raw(own_pool, services.field_cipher, raw)

    result = await run_cli(
        {
            "CAREBRIDGE_DATABASE_URL": own_database,
            "CAREBRIDGE_CODEC_KEYS": both,
            "CAREBRIDGE_LOG_LEVEL": "WARNING",
        },
        "keys",
        "reencrypt",
    )
    assert result.exit_code == 0, result.output
    assert "resealed under key b: 2 registry row(s), 1 inbox message(s)" in result.output

    only_b = FieldCipher(key_b.keys, "b")  # key a taken out of the keyring
    patient = await registry.get_patient(own_pool, only_b, patient_key)
    assert patient is not None and patient.mrn == "MRN-REKEY-1"
    assert await inbox.read_raw(own_pool, only_b, row["id"]) == raw
    with pytest.raises(SealError):
        await inbox.read_raw(own_pool, FieldCipher(key_a.keys, "a"), row["id"])
    again = await run_cli(
        {"CAREBRIDGE_DATABASE_URL": own_database, "CAREBRIDGE_CODEC_KEYS": spec(key_b)},
        "keys",
        "reencrypt",
    )
    assert "0 registry row(s), 0 inbox message(s)" in again.output  # idempotent


def spec(keyring: Keyring) -> str:
    return f"{keyring.current}:{base64.b64encode(keyring.keys[keyring.current]).decode()}"
