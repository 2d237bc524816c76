"""The FHIR read API on the real stack: /fhir/metadata, Task and CarePlan searches validated
against the R4B models, an overdue step's escalation level, and a Task completed through the
step's Update (409 OperationOutcome when the workflow refuses)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.task import Task

from ingest.fhir_examples import discharge_bundle
from schemas import keys
from schemas.transition import TransitionState
from tests.helpers import assert_eventually
from tests.integration.conftest import RunningStack, bearer

FHIR = {"Content-Type": "application/fhir+json"}


async def discharged(
    stack: RunningStack,
    *,
    disposition: str = "1",
    ago: timedelta = timedelta(hours=2),
    facility: str | None = None,
    visit: str = "V-READ",
) -> tuple[str, str]:
    """A FHIR discharge of a visit (of a fresh facility unless given); its transition id
    and patient key."""
    facility, mrn = facility or f"FR{uuid.uuid4().hex[:8].upper()}", "MRN-READ"
    bundle = discharge_bundle(
        datetime.now(UTC),
        facility=facility,
        visit=visit,
        mrn=mrn,
        discharged=-ago,
        disposition=disposition,
    )
    feed = await bearer(stack.services.pool, "feed.fhir", "integration")
    answer = await stack.http.post(
        "/fhir/$process-message", content=json.dumps(bundle), headers={**FHIR, **feed}
    )
    assert answer.status_code == 200, answer.text
    secret = stack.services.settings.key_secret.get_secret_value()
    tid = keys.transition_id(keys.encounter_key(secret, facility, visit))

    async def projected() -> None:  # searches read the projection, which follows the start
        row = await stack.services.pool.fetchrow(
            "SELECT 1 FROM transitions WHERE transition_id = $1", tid
        )
        assert row is not None

    await assert_eventually(projected)
    return tid, keys.patient_key(secret, facility, mrn)


async def as_role(stack: RunningStack, role: str, subject: str | None = None) -> dict[str, str]:
    return await bearer(stack.services.pool, subject or f"user.{role}", role)


def resources(response: httpx.Response) -> list[dict[str, Any]]:
    """The searchset's resources, once the Bundle validates as R4B."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "searchset"
    return [entry["resource"] for entry in body["entry"]]


async def state_of(stack: RunningStack, tid: str) -> TransitionState:
    handle = stack.services.client.get_workflow_handle(keys.workflow_id(tid))
    return await handle.query("get_state", result_type=TransitionState)


async def test_metadata_is_a_capability_statement_naming_what_is_served(
    stack: RunningStack,
) -> None:
    response = await stack.http.get("/fhir/metadata", headers=await as_role(stack, "auditor"))
    assert response.status_code == 200
    statement = response.json()
    CapabilityStatement.model_validate(statement)
    served = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert set(served) == {"Task", "CarePlan", "Patient"}
    assert served["Patient"]["interaction"] == [{"code": "read"}]
    assert {i["code"] for i in served["Task"]["interaction"]} == {"read", "search-type", "patch"}
    assert [o["name"] for o in statement["rest"][0]["operation"]] == ["process-message"]
    assert (await stack.anonymous.get("/fhir/metadata")).status_code == 401


async def test_tasks_of_a_patient_are_one_per_step_with_the_due_time_and_the_care_plan(
    stack: RunningStack,
) -> None:
    tid, patient = await discharged(stack)
    state = await state_of(stack, tid)
    operator = await as_role(stack, "operator")

    tasks = resources(
        await stack.http.get(
            "/fhir/Task", params={"patient": f"Patient/{patient}"}, headers=operator
        )
    )
    assert len(tasks) == len(state.steps)
    by_step = {t["identifier"][0]["value"]: t for t in tasks}
    for step in state.steps:
        found = by_step[step.step_id]
        assert found["for"] == {"reference": f"Patient/{patient}"}
        assert found["basedOn"] == [{"reference": f"CarePlan/{tid}"}]
        assert found["intent"] == "plan"
        if step.due_at is not None:
            end = datetime.fromisoformat(found["restriction"]["period"]["end"])
            assert end == step.due_at
    assert by_step["interactive_contact"]["status"] == "ready"
    assert by_step["interactive_contact"]["businessStatus"]["coding"][0]["code"] == "due"

    ready = resources(
        await stack.http.get(
            "/fhir/Task", params={"patient": patient, "status": "ready"}, headers=operator
        )
    )
    assert ready and {t["status"] for t in ready} == {"ready"}
    contact_due = next(s.due_at for s in state.steps if s.step_id == "interactive_contact")
    assert contact_due is not None

    async def due_ids(*periods: str) -> set[str]:
        params = [("patient", patient), *(("period", p) for p in periods)]
        found = resources(await stack.http.get("/fhir/Task", params=params, headers=operator))
        return {t["identifier"][0]["value"] for t in found}

    due_by_then = await due_ids(f"le{contact_due.isoformat()}")
    assert "interactive_contact" in due_by_then
    assert all(
        s.due_at is not None and s.due_at <= contact_due
        for s in state.steps
        if s.step_id in due_by_then
    )
    later = await due_ids(f"gt{contact_due.isoformat()}")
    assert "interactive_contact" not in later and later
    assert not due_by_then & later
    bad = await stack.http.get("/fhir/Task", params={"period": "soon"}, headers=operator)
    assert bad.status_code == 400

    (plan,) = resources(
        await stack.http.get("/fhir/CarePlan", params={"patient": patient}, headers=operator)
    )
    assert (plan["id"], plan["status"], plan["intent"]) == (tid, "active", "plan")
    assert len(plan["activity"]) == len(state.steps)
    read = await stack.http.get(f"/fhir/CarePlan/{tid}", headers=operator)
    assert read.json() == plan

    audited = await stack.services.pool.fetch(
        "SELECT action, patient_key FROM audit_log WHERE resource_id = $1 "
        "AND action LIKE 'GET /fhir/%'",
        tid,
    )
    assert {r["action"] for r in audited} >= {"GET /fhir/Task", "GET /fhir/CarePlan"}
    assert {r["patient_key"] for r in audited} == {patient}


async def test_an_overdue_step_shows_its_escalation_level(stack: RunningStack) -> None:
    # Home health (NUBC 6), 3 s before its 24-hour referral deadline: it escalates on time.
    tid, _ = await discharged(
        stack, disposition="6", ago=timedelta(hours=24) - timedelta(seconds=3)
    )
    reader = await as_role(stack, "supervisor")

    async def escalated() -> dict[str, Any]:
        tasks = resources(
            await stack.http.get(
                "/fhir/Task", params={"based-on": f"CarePlan/{tid}"}, headers=reader
            )
        )
        (referral,) = [t for t in tasks if t["identifier"][0]["value"] == "home_health_referral"]
        codes = {c["system"]: c["code"] for c in referral["businessStatus"]["coding"]}
        assert codes.get("urn:carebridge:escalation-level") == "1"
        return referral

    referral = await assert_eventually(escalated, within=30)
    Task.model_validate(referral)
    assert referral["businessStatus"]["coding"][0]["code"] == "overdue"
    assert "escalation level 1" in referral["businessStatus"]["text"]
    assert referral["status"] == "ready"


async def test_a_task_is_completed_through_the_update_and_a_second_time_refused(
    stack: RunningStack,
) -> None:
    tid, _ = await discharged(stack)
    task = f"{tid}-medication-reconciliation"
    nurse = {**await as_role(stack, "care_manager", "rn.fhir"), **FHIR}
    patch = [
        {"op": "replace", "path": "/status", "value": "completed"},
        {"op": "add", "path": "/note", "value": [{"text": "list reconciled"}]},
    ]
    done = await stack.http.patch(f"/fhir/Task/{task}", content=json.dumps(patch), headers=nurse)
    assert done.status_code == 200, done.text
    Task.model_validate(done.json())
    assert done.json()["status"] == "completed"
    step = next(
        s for s in (await state_of(stack, tid)).steps if s.step_id == "medication_reconciliation"
    )
    assert (step.status.value, step.completed_by, step.note) == (
        "completed",
        "rn.fhir",
        "list reconciled",
    )

    again = await stack.http.patch(f"/fhir/Task/{task}", content=json.dumps(patch), headers=nurse)
    assert again.status_code == 409
    (issue,) = again.json()["issue"]
    assert issue["code"] == "business-rule" and "already completed" in issue["diagnostics"]

    other = [{"op": "replace", "path": "/priority", "value": "urgent"}]
    refused = await stack.http.patch(f"/fhir/Task/{task}", content=json.dumps(other), headers=nurse)
    assert refused.status_code == 422
    operator = {**await as_role(stack, "operator"), **FHIR}
    assert (
        await stack.http.patch(f"/fhir/Task/{task}", content=json.dumps(patch), headers=operator)
    ).status_code == 403
    missing = await stack.http.get(f"/fhir/Task/{tid}-no-such-step", headers=nurse)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"


async def test_search_parameters_are_checked_and_pages_link_on(stack: RunningStack) -> None:
    operator = await as_role(stack, "operator")
    bad = await stack.http.get("/fhir/Task", params={"status": "nonsense"}, headers=operator)
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
    wrong = await stack.http.get("/fhir/Task", params={"patient": "Group/1"}, headers=operator)
    assert wrong.status_code == 400
    facility = f"FP{uuid.uuid4().hex[:8].upper()}"
    _, patient = await discharged(stack, facility=facility, visit="V-FIRST")
    await discharged(stack, facility=facility, visit="V-SECOND")  # the same patient again
    search = {"patient": patient, "_count": 1}
    page = await stack.http.get("/fhir/CarePlan", params=search, headers=operator)
    assert len(resources(page)) == 1
    links = {link["relation"]: link["url"] for link in page.json()["link"]}
    following = await stack.http.get(links["next"], headers=operator)
    assert len(resources(following)) == 1
    assert resources(following)[0]["id"] != resources(page)[0]["id"]
    assert "next" not in {link["relation"] for link in following.json()["link"]}


async def test_a_transition_temporal_cannot_answer_for_is_a_warning_in_the_searchset(
    stack: RunningStack,
) -> None:
    tid, patient = await discharged(stack)
    # A second transition of the patient whose workflow no worker polls for: its state
    # cannot be read now (a worker away).
    stuck = uuid.uuid4().hex[:24]
    await stack.services.client.start_workflow(
        "NoSuchWorkflow", id=keys.workflow_id(stuck), task_queue=f"nobody-{stuck}"
    )
    pool = stack.services.pool
    await pool.execute(
        "INSERT INTO transitions (transition_id, encounter_key, facility, protocol_id, "
        "protocol_version, status, discharged_at, version) "
        "VALUES ($1, $2, 'STUCK', 'discharge-home', 1, 'active', now(), 1)",
        stuck,
        f"enc-{stuck}",
    )
    await pool.execute(
        "INSERT INTO encounters (patient_key, encounter_key, kind, facility, at, transition_id) "
        "VALUES ($1, $2, 'discharge', 'STUCK', now(), $3)",
        patient,
        f"enc-{stuck}",
        stuck,
    )
    operator = await as_role(stack, "operator")
    found = resources(
        await stack.http.get("/fhir/CarePlan", params={"patient": patient}, headers=operator)
    )
    assert [r["id"] for r in found if r["resourceType"] == "CarePlan"] == [tid]
    (warning,) = [r for r in found if r["resourceType"] == "OperationOutcome"]
    assert warning["issue"][0]["severity"] == "warning"
    assert "1 transition(s)" in warning["issue"][0]["diagnostics"]
    one = await stack.http.get(f"/fhir/CarePlan/{stuck}", headers=operator)
    assert one.status_code == 503 and one.json()["issue"][0]["code"] == "transient"


async def test_the_tasks_patient_reads_as_the_registry_has_them(stack: RunningStack) -> None:
    tid, patient = await discharged(stack)
    operator = await as_role(stack, "operator")
    tasks = resources(
        await stack.http.get("/fhir/Task", params={"based-on": tid}, headers=operator)
    )
    reference = tasks[0]["for"]["reference"]  # the Task's patient, read from /fhir
    response = await stack.http.get(f"/fhir/{reference}", headers=operator)

    assert response.status_code == 200, response.text
    found = response.json()
    Patient.model_validate(found)
    assert found["id"] == patient
    assert found["name"] == [{"family": "Doe", "given": ["Jane", "Q"]}]
    assert (found["gender"], found["birthDate"]) == ("female", "1948-03-12")
    assert found["identifier"][0]["value"] == "MRN-READ"
    audited = await stack.services.pool.fetch(
        "SELECT patient_key FROM audit_log WHERE action = 'GET /fhir/Patient/{patient_id}' "
        "AND resource_id = $1",
        f"Patient/{patient}",
    )
    assert [r["patient_key"] for r in audited] == [patient]
    missing = await stack.http.get("/fhir/Patient/nobody", headers=operator)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"
