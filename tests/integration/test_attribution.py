"""Attribution on the real stack: a roster imported through the CLI decides which discharges
start a transition; the person fields of the ADT reach the started workflow's input."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import yaml
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from typer.testing import Result

from schemas import keys
from schemas.transition import TransitionInput
from tests.conftest import TEST_KEYS
from tests.helpers import a03, database_dsn, msa, with_person_fields
from tests.integration.conftest import RunningStack, run_cli
from workers.runtime.settings import Settings

PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"


@pytest.fixture
def attribution() -> dict[str, object]:
    """The site's attribution settings for this test (parametrize to change them)."""
    return {"attribution": "roster"}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, attribution: dict[str, object]) -> Settings:
    """The session settings with a copy of the shipped protocols whose site rule is changed
    for this test only (the `stack` fixture builds its services from these settings)."""
    protocols = tmp_path / "protocols"
    shutil.copytree(PROTOCOLS, protocols)
    site = yaml.safe_load((protocols / "site.yaml").read_text())
    site.update(attribution)
    (protocols / "site.yaml").write_text(yaml.safe_dump(site))
    return settings.model_copy(update={"protocols_dir": protocols})


async def cli(settings: Settings, *args: str) -> Result:
    """The CLI against this test's database and protocol folder."""
    env = {
        "CAREBRIDGE_DATABASE_URL": database_dsn(settings),
        "CAREBRIDGE_KEY_SECRET": settings.key_secret.get_secret_value(),
        "CAREBRIDGE_PROTOCOLS_DIR": str(settings.protocols_dir),
        "CAREBRIDGE_CODEC_KEYS": TEST_KEYS,
        "CAREBRIDGE_LOG_LEVEL": "WARNING",
    }

    return await run_cli(env, *args)


def workflow_of(settings: Settings, facility: str, visit: str) -> str:
    secret = settings.key_secret.get_secret_value()
    return keys.workflow_id(keys.transition_id(keys.encounter_key(secret, facility, visit)))


async def runs_of(temporal_env: WorkflowEnvironment, workflow_id: str) -> list[str]:
    return [
        wf.id async for wf in temporal_env.client.list_workflows(f"WorkflowId = '{workflow_id}'")
    ]


async def decision_of(stack: RunningStack, facility: str, control_id: str) -> str:
    """The inbox decision as the message browser (GET /messages/{id}) shows it."""
    entry = await stack.services.pool.fetchval(
        "SELECT id FROM adt_inbox WHERE sending_facility = $1 AND control_id = $2",
        facility,
        control_id,
    )
    response = await stack.http.get(f"/messages/{entry}")
    assert response.status_code == 200, response.text
    decision: str = response.json()["decision"]
    return decision


async def test_roster_import_rejects_bad_rows_and_is_idempotent(
    stack: RunningStack, settings: Settings, tmp_path: Path
) -> None:
    authority = f"RST{uuid.uuid4().hex[:6].upper()}"
    mrn = f"MRN{uuid.uuid4().hex[:8]}"
    path = tmp_path / "roster.csv"
    path.write_text(
        "identifier,assigning_authority,practice,pcp_id,program\n"
        f"{mrn},{authority},Riverside,D77,TCM\n"
        f",{authority},Riverside\n"
        f"{mrn},{authority},Hillside\n"
        f"{mrn}X,{authority},Riverside,D77,TCM,19480312\n"
    )

    first = await cli(settings, "roster", "import", str(path))
    assert first.exit_code == 0, first.output
    assert "missing identifier" in first.output
    assert "duplicate of line 2" in first.output
    assert "extra column" in first.output
    assert mrn not in first.output  # reasons never quote the identifier
    assert "1 row(s) accepted: 1 inserted, 0 updated, 0 unchanged; 3 rejected" in first.output

    again = await cli(settings, "roster", "import", str(path))
    assert "1 row(s) accepted: 0 inserted, 0 updated, 1 unchanged; 3 rejected" in again.output

    status = await cli(settings, "roster", "status")
    assert status.exit_code == 0, status.output
    assert "Riverside" in status.output and "roster.csv" in status.output

    stored = await stack.services.pool.fetch(
        "SELECT * FROM roster WHERE assigning_authority = $1", authority
    )
    assert len(stored) == 1
    assert mrn not in str(dict(stored[0]))  # only the HMAC patient key

    missing = await cli(settings, "roster", "import", str(tmp_path / "nowhere.csv"))
    assert missing.exit_code == 1


async def test_discharge_of_a_patient_off_the_roster_is_acked_and_starts_nothing(
    stack: RunningStack, temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    facility = f"ATT{uuid.uuid4().hex[:6].upper()}"
    raw = a03(facility=facility, visit="V1", control_id="OFF-ROSTER", mrn="NOT-ON-ROSTER")

    response = await stack.post_adt(raw)

    assert msa(response.text)[1:4] == [
        "AA",
        "OFF-ROSTER",
        "not attributed: roster (no roster match)",
    ]
    decision = await decision_of(stack, facility, "OFF-ROSTER")
    assert decision.startswith("not attributed")
    assert await runs_of(temporal_env, workflow_of(settings, facility, "V1")) == []


async def test_discharge_on_the_roster_starts_with_the_person_fields_in_its_input(
    stack: RunningStack, temporal_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    facility = f"ATT{uuid.uuid4().hex[:6].upper()}"
    mrn = f"MRN{uuid.uuid4().hex[:8]}"
    path = tmp_path / "roster.csv"
    path.write_text(f"identifier,assigning_authority,practice\n{mrn},{facility},Riverside\n")
    imported = await cli(settings, "roster", "import", str(path))
    assert imported.exit_code == 0, imported.output

    raw = with_person_fields(a03(facility=facility, visit="V2", control_id="ON-ROSTER", mrn=mrn))
    response = await stack.post_adt(raw)

    assert msa(response.text)[1:4] == ["AA", "ON-ROSTER", "transition started (discharge-home)"]
    handle = temporal_env.client.get_workflow_handle(workflow_of(settings, facility, "V2"))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [workflow_input] = await temporal_env.client.data_converter.decode(
        started.input.payloads, [TransitionInput]
    )
    assert isinstance(workflow_input, TransitionInput)
    profile = workflow_input.profile
    assert profile.language == "SPA"
    assert [(c.name, c.relationship, c.phone) for c in profile.caregivers] == [
        ("JOHN DOE", "SPO", "(617)555-0142")
    ]
    assert not profile.caregivers[0].consent_to_contact


@pytest.mark.parametrize("attribution", [{"attribution": "pcp", "attributed_pcp_ids": ["D77"]}])
async def test_pcp_rule_starts_only_discharges_naming_an_attributed_pcp(
    stack: RunningStack, temporal_env: WorkflowEnvironment, settings: Settings
) -> None:
    facility = f"PCP{uuid.uuid4().hex[:6].upper()}"

    def with_pcp(raw: bytes, pcp: str) -> bytes:
        return raw + f"PD1|||GENERAL PRACTICE|{pcp}^WELBY^MARCUS\r".encode()

    ours = await stack.post_adt(
        with_pcp(a03(facility=facility, visit="V1", control_id="P1"), "D77")
    )
    other = await stack.post_adt(
        with_pcp(a03(facility=facility, visit="V2", control_id="P2"), "D12")
    )

    assert msa(ours.text)[1:4] == ["AA", "P1", "transition started (discharge-home)"]
    assert msa(other.text)[1:4] == ["AA", "P2", "not attributed: pcp (PCP not attributed)"]
    assert await runs_of(temporal_env, workflow_of(settings, facility, "V2")) == []
