"""The FHIR door on the real stack: Da Vinci notification Bundles through the HL7 v2 path's
inbox, routing and workflow start (ingest/fhir_intake.py), answered with OperationOutcomes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fhir.resources.R4B.operationoutcome import OperationOutcome
from temporalio.client import WorkflowExecutionStatus

from ingest.fhir_examples import discharge_bundle
from ingest.metrics import FHIR_MESSAGES
from schemas import keys
from schemas.transition import TransitionState
from store import inbox
from tests.helpers import a03, msa
from tests.integration.conftest import RunningStack, bearer

FHIR = {"Content-Type": "application/fhir+json"}


def fresh_facility() -> str:
    return f"FH{uuid.uuid4().hex[:8].upper()}"


def transition_of(stack: RunningStack, facility: str, visit: str) -> str:
    secret = stack.services.settings.key_secret.get_secret_value()
    return keys.transition_id(keys.encounter_key(secret, facility, visit))


async def post_bundle(
    stack: RunningStack, bundle: dict[str, Any] | bytes, role: str = "integration"
) -> httpx.Response:
    """POST to $process-message with a token of `role` (sent explicitly, not the default)."""
    body = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
    headers = {**FHIR, **await bearer(stack.services.pool, "feed.fhir", role)}
    return await stack.http.post("/fhir/$process-message", content=body, headers=headers)


def issue(response: httpx.Response) -> dict[str, Any]:
    """The one issue of the response's OperationOutcome, which must validate as R4B."""
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    OperationOutcome.model_validate(body)
    (only,) = body["issue"]
    found: dict[str, Any] = only
    return found


async def state_of(stack: RunningStack, tid: str) -> TransitionState:
    handle = stack.services.client.get_workflow_handle(keys.workflow_id(tid))
    return await handle.query("get_state", result_type=TransitionState)


async def test_discharge_notification_starts_the_protocol_with_the_due_times_of_an_a03(
    stack: RunningStack,
) -> None:
    now = datetime.now(UTC)
    discharged = timedelta(hours=-3)
    facility, visit = fresh_facility(), "V-FHIR-1"
    bundle = discharge_bundle(now, facility=facility, visit=visit, discharged=discharged)
    response = await post_bundle(stack, bundle)

    assert response.status_code == 200, response.text
    said = issue(response)
    assert said["severity"] == "information"
    assert "transition started (discharge-home)" in said["diagnostics"]
    tid = transition_of(stack, facility, visit)
    assert said["details"]["coding"][0]["code"] == tid
    # The answer came after the start: the workflow is there when the 200 is.
    handle = stack.services.client.get_workflow_handle(keys.workflow_id(tid))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

    # The same discharge sent as an HL7 A03 (another visit) plans the very same due times.
    twin_visit = "V-HL7-TWIN"
    twin = await stack.post_adt(
        a03(facility=facility, visit=twin_visit, discharged=now + discharged, now=now)
    )
    assert msa(twin.text)[1] == "AA", twin.text
    fhir_state = await state_of(stack, tid)
    hl7_state = await state_of(stack, transition_of(stack, facility, twin_visit))
    assert fhir_state.protocol_id == "discharge-home"
    due = {s.step_id: s.due_at for s in fhir_state.steps}
    assert due == {s.step_id: s.due_at for s in hl7_state.steps}
    assert due["interactive_contact"] is not None
    assert all(at > now + discharged for at in due.values() if at is not None)

    rows = await stack.services.pool.fetch("SELECT * FROM adt_inbox WHERE transition_id = $1", tid)
    assert [(r["message_type"], r["status"], r["ack_code"]) for r in rows] == [
        ("FHIR^notification-discharge", "processed", "AA")
    ]
    assert rows[0]["raw"] is None  # sealed like an HL7 message's bytes
    assert inbox.open_raw(stack.services.field_cipher, rows[0]) == json.dumps(bundle).encode()


async def test_a_notification_posted_twice_starts_one_transition(stack: RunningStack) -> None:
    facility, visit = fresh_facility(), "V-TWICE"
    bundle = discharge_bundle(datetime.now(UTC), facility=facility, visit=visit)
    first = await post_bundle(stack, bundle)
    second = await post_bundle(stack, bundle)

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()  # the stored answer, sent again
    rows = await stack.services.pool.fetch(
        "SELECT id FROM adt_inbox WHERE sending_facility = $1", facility
    )
    assert len(rows) == 1
    tid = transition_of(stack, facility, visit)
    runs = [
        wf.id
        async for wf in stack.services.client.list_workflows(
            f"WorkflowId = '{keys.workflow_id(tid)}'"
        )
    ]
    assert len(runs) <= 1  # visibility may lag; what started is what the state shows
    assert (await state_of(stack, tid)).transition_id == tid


async def test_the_same_visit_over_hl7_afterwards_is_a_duplicate(stack: RunningStack) -> None:
    now = datetime.now(UTC)
    facility, visit, mrn = fresh_facility(), "V-BOTH-DOORS", "MRN-FHIR-7"
    bundle = discharge_bundle(now, facility=facility, visit=visit, mrn=mrn)
    assert (await post_bundle(stack, bundle)).status_code == 200

    ack = await stack.post_adt(a03(facility=facility, visit=visit, mrn=mrn, now=now))
    assert msa(ack.text)[1] == "AA"
    assert "transition already exists" in ack.text
    rows = await stack.services.pool.fetch(
        "SELECT message_type, status FROM adt_inbox WHERE sending_facility = $1 ORDER BY id",
        facility,
    )
    assert [(r["message_type"], r["status"]) for r in rows] == [
        ("FHIR^notification-discharge", "processed"),
        ("ADT^A03", "duplicate"),
    ]


async def test_an_hl7_discharge_first_makes_the_notification_a_duplicate(
    stack: RunningStack,
) -> None:
    now = datetime.now(UTC)
    facility, visit = fresh_facility(), "V-HL7-FIRST"
    assert msa((await stack.post_adt(a03(facility=facility, visit=visit, now=now))).text)[1] == "AA"
    response = await post_bundle(stack, discharge_bundle(now, facility=facility, visit=visit))
    assert response.status_code == 200
    assert "transition already exists" in issue(response)["diagnostics"]


async def test_a_bundle_without_a_focus_gets_400_and_an_operation_outcome(
    stack: RunningStack,
) -> None:
    bundle = discharge_bundle(datetime.now(UTC), facility=fresh_facility())
    del bundle["entry"][0]["resource"]["focus"]
    refused_before = FHIR_MESSAGES.labels(event="unknown", status="400")._value.get()
    response = await post_bundle(stack, bundle)
    assert FHIR_MESSAGES.labels(event="unknown", status="400")._value.get() == refused_before + 1

    assert response.status_code == 400
    said = issue(response)
    assert (said["severity"], said["code"]) == ("error", "required")
    assert said["expression"] == ["MessageHeader.focus"]
    row = await stack.services.pool.fetchrow(
        "SELECT status, ack_code FROM adt_inbox WHERE id = (SELECT max(id) FROM adt_inbox "
        "WHERE message_type = 'FHIR^notification-discharge' AND status = 'rejected')"
    )
    assert row is not None and row["ack_code"] == "AE"  # kept, as a refused HL7 message is


async def test_bad_bodies_and_unknown_events_are_refused_with_sentences(
    stack: RunningStack,
) -> None:
    not_json = await post_bundle(stack, b"{not json")
    assert not_json.status_code == 400 and "not JSON" in issue(not_json)["diagnostics"]

    wrong_type = await post_bundle(stack, {"resourceType": "Bundle", "type": "collection"})
    assert wrong_type.status_code == 400
    assert issue(wrong_type)["expression"] == ["Bundle.type"]

    invalid = await post_bundle(stack, {"resourceType": "Bundle", "type": "message", "x": 1})
    assert invalid.status_code == 400 and "not valid FHIR R4" in issue(invalid)["diagnostics"]

    unknown = await post_bundle(
        stack, discharge_bundle(datetime.now(UTC), facility=fresh_facility(), event="x-ray")
    )
    assert unknown.status_code == 400
    assert issue(unknown)["code"] == "not-supported"

    unfinished = discharge_bundle(datetime.now(UTC), facility=fresh_facility())
    unfinished["entry"][1]["resource"]["status"] = "in-progress"
    refused = await post_bundle(stack, unfinished)
    assert refused.status_code == 400 and issue(refused)["expression"] == ["Encounter.status"]

    as_text = await stack.http.post(
        "/fhir/$process-message", content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert as_text.status_code == 415


async def test_only_integration_tokens_may_post_notifications(stack: RunningStack) -> None:
    bundle = discharge_bundle(datetime.now(UTC), facility=fresh_facility())
    assert (await post_bundle(stack, bundle, role="care_manager")).status_code == 403
    anonymous = await stack.anonymous.post(
        "/fhir/$process-message", content=json.dumps(bundle), headers=FHIR
    )
    assert anonymous.status_code == 401


async def test_reprocessing_a_stored_notification_is_refused_with_a_sentence(
    stack: RunningStack,
) -> None:
    facility = fresh_facility()
    answer = await post_bundle(stack, discharge_bundle(datetime.now(UTC), facility=facility))
    assert answer.status_code == 200
    entry = await stack.services.pool.fetchval(
        "SELECT id FROM adt_inbox WHERE sending_facility = $1", facility
    )
    operator = await bearer(stack.services.pool, "ops.fhir", "operator")
    refused = await stack.http.post(f"/messages/{entry}/reprocess", headers=operator)
    assert refused.status_code == 409
    assert "FHIR Bundle" in refused.text and "post it again" in refused.text
