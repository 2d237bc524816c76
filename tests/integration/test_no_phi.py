"""No patient data where it does not belong (DESIGN invariant 6): after a whole transition on
a real dev server, the raw Temporal history (read without the codec), the dev server's SQLite
files, PostgreSQL's data directory (tables and WAL: the registry and the inbox hold them sealed),
every log line and the metrics page hold none of the patient's name, MRN, birth date or phone
numbers; with the codec the same history decodes and they are there."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.client import Client

from schemas import keys
from schemas.transition import (
    AttemptRequest,
    AttemptResult,
    NoteRequest,
    ProfileRequest,
    TransitionStatus,
)
from tests.helpers import a03, assert_eventually, postgres_files_holding, with_event
from tests.integration.conftest import start_server, stop_server
from workers.http_server import create_app
from workers.runtime.services import Services
from workers.runtime.settings import Settings
from workers.runtime.temporal import DATA_CONVERTER
from workers.worker import build_worker
from workflows.transition import TransitionWorkflow

NAME = "QUIXOTE^ZEBEDIAH"
MRN = "MRN-PHI-4471-X"
BIRTH = "19480312"
PHONES = ("4135550142", "4135550199")
CAREGIVER = "NK1|1|QUIXOTE^ESMERALDA|DTR^Daughter||^PRN^PH^^1^413^5550177"
PHI = ("QUIXOTE", "ZEBEDIAH", "ESMERALDA", "5550177", MRN, BIRTH, *PHONES)


def patient_message(control_id: str) -> bytes:
    return (
        a03(facility="PHIHOSP", visit="V-PHI", control_id=control_id, mrn=MRN)
        .replace(b"DOE^JANE^Q", NAME.encode())
        .replace(
            b"|F\r", f"|F|||1 MAIN ST^^SPRINGFIELD^MA||^PRN^PH^^1^413^{PHONES[0][3:]}\r".encode()
        )
        + f"{CAREGIVER}\r".encode()
    )


def leaks(text: str) -> list[str]:
    return [value for value in PHI if value in text]


async def test_a_whole_transition_leaves_no_phi_outside_encrypted_payloads(
    own_temporal: Settings,
    pool: asyncpg.Pool,
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = own_temporal
    process, client = await start_server(settings)
    try:
        services = Services.build(settings, pool, client)
        async with build_worker(client, pool, settings):
            first = await services.intake.handle(patient_message("PHI-A03"))
            assert first.code == "AA", first.ack
            update = with_event(patient_message("PHI-A08"), "A08").replace(
                PHONES[0][3:].encode(), PHONES[1][3:].encode()
            )
            assert (await services.intake.handle(update)).code == "AA"
            tid = keys.transition_id(
                keys.encounter_key(settings.key_secret.get_secret_value(), "PHIHOSP", "V-PHI")
            )
            handle = client.get_workflow_handle_for(TransitionWorkflow.run, keys.workflow_id(tid))
            await handle.execute_update(
                TransitionWorkflow.record_attempt,
                AttemptRequest(
                    step_id="interactive_contact", by="rn.a", result=AttemptResult.REACHED
                ),
            )
            state = await handle.query(TransitionWorkflow.get_state)
            assert state.profile.caregivers[0].name == "ESMERALDA QUIXOTE"  # from NK1
            await handle.execute_update(
                TransitionWorkflow.update_profile,
                ProfileRequest(
                    by="rn.a",
                    profile=state.profile.model_copy(
                        update={"goals_of_care": "ZEBEDIAH wants to see ESMERALDA graduate"}
                    ),
                ),
            )
            await handle.execute_update(
                TransitionWorkflow.add_note,
                NoteRequest(by="rn.a", text=f"ZEBEDIAH QUIXOTE, call {PHONES[1]} after 5"),
            )

            async def phone_updated() -> None:
                state = await handle.query(TransitionWorkflow.get_state)
                assert state.contact_numbers == [PHONES[1]]

            await assert_eventually(phone_updated)
            cancel = with_event(patient_message("PHI-A13"), "A13")
            assert (await services.intake.handle(cancel)).code == "AA"
            final = await handle.result()
            assert final.status == TransitionStatus.CANCELLED

            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(services)), base_url="http://t"
            ) as http:
                metrics = (await http.get("/metrics")).text
            assert "carebridge_adt_messages" in metrics

        plain = await Client.connect(
            settings.temporal_target, namespace="default", data_converter=DATA_CONVERTER
        )
        raw_history = await plain.get_workflow_handle(keys.workflow_id(tid)).fetch_history()
        raw_json = raw_history.to_json()
        described = await plain.get_workflow_handle(keys.workflow_id(tid)).describe()
        decoded = await handle.fetch_history()  # the codec client
        decoded_payloads = [
            p.data.decode("utf-8", "replace")
            for event in decoded.events
            if event.HasField("workflow_execution_signaled_event_attributes")
            for p in (
                await client.data_converter.payload_codec.decode(  # type: ignore[union-attr]
                    event.workflow_execution_signaled_event_attributes.input.payloads
                )
            )
        ]
    finally:
        await stop_server(process)

    assert leaks(raw_json) == [], "PHI in the raw Temporal history"
    assert leaks(described.id + json.dumps(str(described.typed_search_attributes))) == []
    sqlite, server_log = await asyncio.to_thread(server_files, Path(settings.state_dir))
    assert sqlite, "no SQLite files found"
    assert leaks(sqlite) == [], "PHI in the dev server's SQLite files"
    captured = capfd.readouterr()
    assert leaks(captured.out + captured.err + server_log) == [], "PHI in log output"
    assert leaks(metrics) == [], "PHI on the metrics page"
    await pool.execute("CHECKPOINT")  # the tables' pages on disk, beside the WAL
    data = Path(await pool.fetchval("SHOW data_directory"))
    needles = [value.encode() for value in PHI]
    on_disk = await asyncio.to_thread(postgres_files_holding, data, needles)
    if on_disk is not None:  # None: the server is on another machine
        assert on_disk == {}, f"PHI in plain text in PostgreSQL's files: {on_disk}"
    assert any(PHONES[1] in text for text in decoded_payloads), "the codec should decode it"


def server_files(state_dir: Path) -> tuple[str, str]:
    """The dev server's SQLite files (database, WAL) and its log, as text."""
    sqlite = b"".join(path.read_bytes() for path in state_dir.glob("temporal.db*"))
    log = (state_dir / "temporal.log").read_text(errors="replace")
    return sqlite.decode("latin-1"), log
