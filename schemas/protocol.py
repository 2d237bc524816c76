"""Transition protocols: steps with due rules, as data (pinned per transition at start)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class DueUnit(StrEnum):
    HOURS = "hours"
    CALENDAR_DAYS = "calendar_days"
    BUSINESS_DAYS = "business_days"


class DueRule(BaseModel):
    """When a step is due, counted from the discharge.

    Day counts take the discharge date as day 0 and end at the end of the last day in the
    facility's time zone (CPT: "within two business days of discharge", Monday to Friday
    except holidays). Hours count from the discharge instant.
    """

    model_config = ConfigDict(frozen=True)

    unit: DueUnit
    amount: int = Field(ge=0)


class StepKind(StrEnum):
    HUMAN_TASK = "human_task"
    AUTOMATED = "automated"


class StepRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    kind: StepKind = StepKind.HUMAN_TASK
    owner_role: str = "care_manager"
    due: DueRule


class Protocol(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    version: int = Field(ge=1)
    title: str
    steps: tuple[StepRule, ...]


# The first protocol: the two TCM steps every home discharge needs. Issue-tracked protocol
# files (home health, AMA, SNF, expired) replace this constant with versioned data files.
TCM_MINIMAL = Protocol(
    id="tcm-minimal",
    version=1,
    title="Discharge home: medication reconciliation and interactive contact",
    steps=(
        StepRule(
            id="medication_reconciliation",
            title="Medication reconciliation",
            # CPT: no later than the face-to-face visit, which is due by day 14 at the latest.
            due=DueRule(unit=DueUnit.CALENDAR_DAYS, amount=14),
        ),
        StepRule(
            id="interactive_contact",
            title="Interactive contact with patient or caregiver",
            due=DueRule(unit=DueUnit.BUSINESS_DAYS, amount=2),
        ),
    ),
)
