"""Care work as FHIR R4 resources: a transition as a CarePlan, each of its steps as a Task,
what the server does as a CapabilityStatement. Pure functions of the workflow's state; the
routes (workers/api/fhir_read.py) validate what they serve with fhir.resources' R4B models.

Ids: a CarePlan's id is the transition id; a Task's is `{transition id}-{step id}` with the
step id's underscores written as hyphens (FHIR ids allow neither `_` nor more than 64
characters); a Patient reference is `Patient/{patient key}` (the opaque HMAC key carebridge
uses everywhere, never an MRN).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.transition import StepState, StepStatus, TransitionState, TransitionStatus
from store.registry_rules import PatientRecord

BUSINESS_STATUS = "urn:carebridge:step-business-status"
ESCALATION_LEVEL = "urn:carebridge:escalation-level"
USERS = "urn:carebridge:user"  # a token's or session's subject
STEP_IDS = "urn:carebridge:step"
PROTOCOLS = "urn:carebridge:protocol"
# Step status -> FHIR task-status. A pending step waits for an earlier one (on-hold); a
# stopped one ended with outreach (readmission, death, cancelled discharge, period end).
TASK_STATUS = {
    StepStatus.PENDING: "on-hold",
    StepStatus.OPEN: "ready",
    StepStatus.COMPLETED: "completed",
    StepStatus.CANCELLED: "cancelled",
    StepStatus.STOPPED: "cancelled",
    StepStatus.NOT_NEEDED: "cancelled",
}
CARE_PLAN_STATUS = {TransitionStatus.ACTIVE: "active", TransitionStatus.COMPLETED: "completed"}
Json = dict[str, Any]


def task_id(transition_id: str, step_id: str) -> str:
    return f"{transition_id}-{step_id.replace('_', '-')}"


def split_task_id(value: str) -> tuple[str, str]:
    """(transition id, the step id as written in the Task id); ValueError when malformed."""
    transition_id, _, step = value.partition("-")
    if not transition_id or not step:
        raise ValueError(f"Task id {value} is not a carebridge Task id (transition-step).")
    return transition_id, step


def step_of(state: TransitionState, written: str) -> StepState | None:
    return next((s for s in state.steps if s.step_id.replace("_", "-") == written), None)


def _instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def owner_of(state: TransitionState, step: StepState) -> str | None:
    """Who the step is for: its assignee, else the transition's owner."""
    return step.assignee or state.owner


def business_status(step: StepState, now: datetime) -> Json:
    """overdue (and since when), due, snoozed, or the step's own status; the escalation level
    reached as a second coding."""
    if step.is_open and step.snoozed_until is not None and step.snoozed_until > now:
        code, text = "snoozed", f"snoozed until {step.snoozed_until.isoformat()}"
    elif step.is_open and step.overdue_since is not None:
        code, text = "overdue", f"overdue since {step.overdue_since.isoformat()}"
    elif step.is_open and step.due_at is not None and step.due_at <= now:
        code, text = "overdue", f"overdue since {step.due_at.isoformat()}"
    elif step.is_open:
        code, text = "due", "due" if step.due_at is None else f"due {step.due_at.isoformat()}"
    else:
        code, text = step.status.value.replace("_", "-"), step.status.value.replace("_", " ")
    codings = [{"system": BUSINESS_STATUS, "code": code}]
    if step.escalation_level:
        codings.append({"system": ESCALATION_LEVEL, "code": str(step.escalation_level)})
        text += f", escalation level {step.escalation_level}"
    return {"coding": codings, "text": text}


def task(state: TransitionState, step: StepState, patient_key: str | None, now: datetime) -> Json:
    resource: Json = {
        "resourceType": "Task",
        "id": task_id(state.transition_id, step.step_id),
        "identifier": [{"system": STEP_IDS, "value": step.step_id}],
        "basedOn": [{"reference": f"CarePlan/{state.transition_id}"}],
        "status": TASK_STATUS[step.status],
        "businessStatus": business_status(step, now),
        "intent": "plan",
        "code": {"coding": [{"system": STEP_IDS, "code": step.step_id}], "text": step.title},
        "description": step.title,
        "authoredOn": state.discharged_at.isoformat(),
        "performerType": [{"text": step.owner_role}],
    }
    if patient_key:
        resource["for"] = {"reference": f"Patient/{patient_key}"}
    if owner := owner_of(state, step):
        resource["owner"] = {"identifier": {"system": USERS, "value": owner}, "display": owner}
    if step.due_at is not None:
        resource["restriction"] = {"period": {"end": step.due_at.isoformat()}}
    if step.completed_at is not None:
        resource["executionPeriod"] = {"end": step.completed_at.isoformat()}
        resource["lastModified"] = step.completed_at.isoformat()
    if step.cancel_reason:
        resource["statusReason"] = {"text": step.cancel_reason}
    return resource


def care_plan(state: TransitionState, patient_key: str | None) -> Json:
    period: Json = {"start": state.discharged_at.isoformat()}
    if state.period_ends_at is not None:
        period["end"] = state.period_ends_at.isoformat()
    resource: Json = {
        "resourceType": "CarePlan",
        "id": state.transition_id,
        "identifier": [{"system": "urn:carebridge:transition", "value": state.transition_id}],
        "instantiatesUri": [f"{PROTOCOLS}:{state.protocol_id}:v{state.protocol_version}"],
        "status": CARE_PLAN_STATUS.get(state.status, "revoked"),
        "intent": "plan",
        "title": f"Care transition ({state.protocol_id})",
        "period": period,
        "activity": [
            {"reference": {"reference": f"Task/{task_id(state.transition_id, s.step_id)}"}}
            for s in state.steps
        ],
    }
    if patient_key:
        resource["subject"] = {"reference": f"Patient/{patient_key}"}
    else:  # CarePlan.subject is required: the transition is the only subject we can name
        resource["subject"] = {"display": "patient not registered"}
    if state.received_at is not None:
        resource["created"] = state.received_at.isoformat()
    if state.owner:
        resource["author"] = {"identifier": {"system": USERS, "value": state.owner}}
    return resource


GENDERS = {"F": "female", "M": "male", "O": "other", "U": "unknown"}  # PID-8 (table 0001)
IDENTIFIER_TYPES = "http://terminology.hl7.org/CodeSystem/v2-0203"


def patient(record: PatientRecord) -> Json:
    """The registry's record of a patient key as a Patient (id = the key): what the feeds
    said, nothing more. PHI: served to readers, each read audited."""
    resource: Json = {"resourceType": "Patient", "id": record.patient_key}
    identifiers = [
        {
            "value": i.id,
            **({"assigner": {"display": i.assigning_authority}} if i.assigning_authority else {}),
            **(
                {"type": {"coding": [{"system": IDENTIFIER_TYPES, "code": i.type_code}]}}
                if i.type_code
                else {}
            ),
        }
        for i in record.identifiers
    ]
    if identifiers:
        resource["identifier"] = identifiers
    given = [g for g in (record.given_name, record.middle_name) if g]
    name: Json = {"family": record.family_name} if record.family_name else {}
    if given:
        name["given"] = given
    if name:
        resource["name"] = [name]
    if record.sex:
        resource["gender"] = GENDERS.get(record.sex.upper(), "unknown")
    if record.birth_date is not None:
        resource["birthDate"] = record.birth_date.isoformat()
    if record.phones:
        resource["telecom"] = [{"system": "phone", "value": phone} for phone in record.phones]
    if record.address:
        resource["address"] = [{"text": record.address}]
    if record.language:
        resource["communication"] = [{"language": {"text": record.language}}]
    if record.pcp:
        resource["generalPractitioner"] = [{"display": record.pcp}]
    return resource


def searchset(resources: list[Json], self_url: str, next_url: str | None) -> Json:
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def capability_statement(software_version: str, released: str) -> Json:
    """What this server does, and nothing it does not: JSON only; Task and CarePlan search
    and read, Task patch to completed; $process-message for Da Vinci notifications."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": released,
        "publisher": "carebridge",
        "kind": "instance",
        "software": {"name": "carebridge", "version": software_version},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Care transitions as CarePlan (one per discharge) and Task "
                "(one per step); Da Vinci Unsolicited Notifications in through $process-message; "
                "R5 Backport REST-hook notifications in at /fhir/subscriptions/{source}.",
                "security": {
                    "description": "Bearer tokens of carebridge's API (carebridge tokens create, "
                    "or OIDC JWTs): the same roles as the API. Reading CarePlan, Task and Patient "
                    "(user/CarePlan.rs, user/Task.rs, user/Patient.r) takes care_manager, "
                    "supervisor or operator; "
                    "patching a Task (user/Task.u) care_manager or supervisor; "
                    "$process-message the integration role."
                },
                "resource": [
                    {
                        "type": "Task",
                        "interaction": [
                            {"code": "read"},
                            {"code": "search-type"},
                            {"code": "patch"},
                        ],
                        "searchParam": [
                            {"name": "patient", "type": "reference"},
                            {"name": "status", "type": "token"},
                            {"name": "owner", "type": "reference"},
                            {"name": "based-on", "type": "reference"},
                            {
                                "name": "period",
                                "type": "date",
                                "documentation": "the due time, restriction.period.end",
                            },
                            {"name": "_count", "type": "number"},
                        ],
                    },
                    {"type": "Patient", "interaction": [{"code": "read"}]},
                    {
                        "type": "CarePlan",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {"name": "patient", "type": "reference"},
                            {"name": "status", "type": "token"},
                            {"name": "_count", "type": "number"},
                        ],
                    },
                ],
                "operation": [
                    {
                        "name": "process-message",
                        "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
                        "documentation": "Da Vinci admit, discharge and transfer notification "
                        "Bundles; answered with an OperationOutcome.",
                    }
                ],
            }
        ],
    }
