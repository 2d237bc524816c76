"""A care transition: its input, its plan (due times), its live state and operator actions."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.protocol import Protocol, StepKind


class TransitionStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"


class TransitionInput(BaseModel):
    """What the workflow starts with. Opaque keys only: no names, MRNs or birth dates."""

    model_config = ConfigDict(frozen=True)

    transition_id: str
    encounter_key: str = Field(description="HMAC of sending facility + visit number")
    facility: str
    discharged_at: AwareDatetime
    patient_class: str = ""
    discharge_disposition: str = ""
    message_control_id: str = ""
    protocol: Protocol


class PlanRequest(BaseModel):
    """Input of the due-time activity."""

    model_config = ConfigDict(frozen=True)

    discharged_at: AwareDatetime
    timezone: str | None = Field(
        default=None, description="IANA zone of the facility; the worker's setting if unset"
    )
    protocol: Protocol


class PlannedStep(BaseModel):
    model_config = ConfigDict(frozen=True)

    step_id: str
    title: str
    kind: StepKind
    owner_role: str
    due_at: AwareDatetime


class TransitionPlan(BaseModel):
    """Due times computed once, in an activity, and carried by the workflow from then on."""

    model_config = ConfigDict(frozen=True)

    timezone: str
    calendar: str = Field(description="Business-day calendar and its version")
    steps: tuple[PlannedStep, ...]


class StepState(BaseModel):
    step_id: str
    title: str
    kind: StepKind
    owner_role: str
    due_at: AwareDatetime
    status: StepStatus = StepStatus.OPEN
    overdue_since: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    completed_by: str | None = None
    outcome: str | None = None
    note: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status == StepStatus.OPEN


class TransitionState(BaseModel):
    """The live state a workflow query returns."""

    transition_id: str
    facility: str
    status: TransitionStatus
    protocol_id: str
    protocol_version: int
    discharged_at: AwareDatetime
    timezone: str | None = None
    steps: list[StepState] = []
    version: int = 0


class CompleteStepRequest(BaseModel):
    """A care manager's completion of one step (a workflow Update)."""

    model_config = ConfigDict(frozen=True)

    step_id: str
    by: str = Field(min_length=1, max_length=200)
    outcome: str = Field(default="done", min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("by", "outcome")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class ProjectionRecord(BaseModel):
    """One row of the transition projection (Postgres), written by the workflow via an activity."""

    model_config = ConfigDict(frozen=True)

    transition_id: str
    encounter_key: str
    facility: str
    protocol_id: str
    protocol_version: int
    status: TransitionStatus
    discharged_at: AwareDatetime
    current_step: str | None
    next_due_at: AwareDatetime | None
    overdue_steps: tuple[str, ...] = ()
    version: int
