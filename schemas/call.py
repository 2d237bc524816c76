"""The outreach call's structured outcome: whom it reached (or why not), and what was learned
(medication problems, an appointment, red-flag symptoms, social needs). The workflow maps a
recorded call onto the steps it informs (transition_calls.py); PHI (the care manager's free
text) stays in the workflow's encrypted state, the timeline gets controlled words only."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.protocol import StepKind

OUTREACH_ROLE = "care_manager"  # the role that calls the patient in the default protocols
# Red-flag symptoms escalate to a clinician at once, through the notification outbox (no
# symptom is named in the notice: it carries ids and a link, like every notice).
RED_FLAG_ROLE = "clinician"
RED_FLAG_CHANNEL = "page"


def is_call_step(kind: StepKind, owner_role: str) -> bool:
    """A step the care manager completes by calling the patient (interactive contact, the
    high-risk check-in): the steps that take attempts and the call outcome form."""
    return kind == StepKind.HUMAN_TASK and owner_role == OUTREACH_ROLE


class Reached(StrEnum):
    PATIENT = "patient"
    CAREGIVER = "caregiver"
    NOBODY = "nobody"


class AppointmentStatus(StrEnum):
    BOOKED = "booked"  # made on this call
    CONFIRMED = "confirmed"  # made before, confirmed on this call


class RedFlag(StrEnum):
    """Symptoms after a discharge that need a clinician the same day (the warning signs of
    the common discharge instructions: heart failure, COPD, infection, bleeding, falls)."""

    CHEST_PAIN = "chest_pain"
    SHORTNESS_OF_BREATH = "shortness_of_breath"
    FEVER = "fever"
    NEW_CONFUSION = "new_confusion"
    BLEEDING = "bleeding"
    FALL = "fall"
    WEIGHT_GAIN_OR_SWELLING = "weight_gain_or_swelling"
    SEVERE_PAIN = "severe_pain"
    CANNOT_KEEP_DOWN_FLUIDS = "cannot_keep_down_fluids_or_medicines"
    WOUND_PROBLEM = "wound_problem"


RED_FLAG_TITLES = {
    RedFlag.CHEST_PAIN: "Chest pain or pressure",
    RedFlag.SHORTNESS_OF_BREATH: "Shortness of breath, worse than at discharge",
    RedFlag.FEVER: "Fever of 38 °C (100.4 °F) or more",
    RedFlag.NEW_CONFUSION: "New confusion or drowsiness",
    RedFlag.BLEEDING: "Bleeding that does not stop",
    RedFlag.FALL: "A fall",
    RedFlag.WEIGHT_GAIN_OR_SWELLING: "Weight gain over 1 kg (2-3 lb) a day, or new swelling",
    RedFlag.SEVERE_PAIN: "Severe or worsening pain",
    RedFlag.CANNOT_KEEP_DOWN_FLUIDS: "Cannot keep down fluids or medicines",
    RedFlag.WOUND_PROBLEM: "Wound red, hot, opening or draining",
}


class CallFindings(BaseModel):
    """What one call brought: whom it reached, else whether a message was left or the number
    was wrong; and, when someone was reached, what was learned (None: not asked)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reached: Reached
    left_message: bool = False
    wrong_number: bool = False
    medication_problems: bool | None = Field(
        default=None, description="medication problems found (None: not reviewed on the call)"
    )
    medication_notes: str | None = Field(default=None, max_length=2000)
    appointment_at: AwareDatetime | None = Field(
        default=None, description="the follow-up visit's appointment, booked or confirmed"
    )
    appointment_status: AppointmentStatus = AppointmentStatus.BOOKED
    red_flags: tuple[RedFlag, ...] = Field(
        default=(), description="red-flag symptoms reported: a clinician is notified at once"
    )
    social_needs: bool | None = Field(
        default=None, description="social needs found (None: not asked)"
    )
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("red_flags")
    @classmethod
    def _once_each(cls, value: tuple[RedFlag, ...]) -> tuple[RedFlag, ...]:
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _consistent(self) -> CallFindings:
        if self.reached == Reached.NOBODY:
            learned = [
                what
                for what, given in (
                    ("medication problems", self.medication_problems is not None),
                    ("an appointment", self.appointment_at is not None),
                    ("red-flag symptoms", bool(self.red_flags)),
                    ("social needs", self.social_needs is not None),
                )
                if given
            ]
            if learned:
                raise ValueError(f"a call that reached nobody cannot record {' or '.join(learned)}")
            if self.left_message and self.wrong_number:
                raise ValueError("a call either left a message or reached a wrong number")
        elif self.left_message or self.wrong_number:
            raise ValueError(
                f"a call that reached the {self.reached.value} neither left a message nor "
                "reached a wrong number"
            )
        if self.medication_notes and self.medication_problems is None:
            raise ValueError("medication notes need the answer whether problems were found")
        return self

    def findings(self) -> dict[str, Any]:
        """This call's findings as fields (for a CallRecord)."""
        return {name: getattr(self, name) for name in CallFindings.model_fields}

    @property
    def summary(self) -> str:
        """The call in controlled words, for the timeline (no free text, no symptom names)."""
        if self.reached == Reached.NOBODY:
            if self.left_message:
                return "left a message"
            return "wrong number" if self.wrong_number else "no answer"
        parts = [f"reached {self.reached.value}"]
        if self.medication_problems is not None:
            parts.append(
                "medication problems found" if self.medication_problems else "medicines reviewed"
            )
        if self.appointment_at is not None:
            parts.append(f"appointment {self.appointment_status.value}")
        if self.red_flags:
            parts.append(f"{len(self.red_flags)} red flag(s): clinician notified")
        if self.social_needs is not None:
            parts.append("social needs found" if self.social_needs else "no social needs")
        return "; ".join(parts)


class CallRecord(CallFindings):
    """A recorded call: when (the care manager may record it after the fact), by whom, on
    which step, and its findings."""

    at: AwareDatetime
    by: str
    step_id: str


class Evidence(BaseModel):
    """What a call found that informs another step (the medication reconciliation, the
    social needs screening): kept on that step for whoever completes it."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    by: str
    finding: str = Field(description="controlled words, e.g. 'medication problems found'")
    note: str | None = Field(default=None, description="the care manager's notes (PHI)")
