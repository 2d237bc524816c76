"""A transition started under key A completes after key B became current (real dev server)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from schemas.protocol_library import load_library
from schemas.transition import AdtSignal, TransitionStatus
from tests.helpers import start_direct
from tests.workflow.support import PROTOCOLS_DIR
from workers.runtime.codec import KEY_ID, Keyring
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
