"""The person behind the discharge: language, contact numbers, caregivers, contact
preferences and what matters to them. All PHI: it lives in encrypted workflow payloads and the
projection's protected columns, never in ids, search attributes, logs or metrics."""

from __future__ import annotations

from datetime import time
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.social_needs import HrsnDomain


class ContactChannel(StrEnum):
    PHONE = "phone"
    SMS = "sms"
    EMAIL = "email"
    VIDEO = "video"
    IN_PERSON = "in_person"


class Caregiver(BaseModel):
    """A family caregiver or next of kin (NK1, or entered by the care manager)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    relationship: str = Field(default="", max_length=40, description="HL7 table 0063, e.g. SPO")
    phone: str = Field(default="", max_length=25)
    consent_to_contact: bool = Field(
        default=False, description="the patient agreed that carebridge may call this person"
    )
    manages_medications: bool = False


class ContactWindow(BaseModel):
    """The patient's preferred hours for contact, in the site's local time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> ContactWindow:
        if self.end <= self.start:
            raise ValueError("the contact window must end after it starts")
        return self

    def contains(self, local: time) -> bool:
        return self.start <= local.replace(tzinfo=None) < self.end


class PersonProfile(BaseModel):
    """What outreach needs to reach this person in a way that works for them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    language: str = Field(default="", max_length=60, description="PID-15 preferred language")
    interpreter_needed: bool = False
    phones: tuple[str, ...] = Field(default=(), description="PID-13 home, PID-14 business")
    caregivers: tuple[Caregiver, ...] = ()
    preferred_channel: ContactChannel | None = None
    contact_window: ContactWindow | None = None
    goals_of_care: str = Field(
        default="", max_length=2000, description="what the patient said matters to them"
    )
    discharged_to: str = Field(
        default="",
        max_length=120,
        description="PV1-37 of a discharge to a facility (SNF, rehabilitation, ...): where the "
        "patient is now, reached there rather than at home",
    )
    needs_shared_on_plan: tuple[HrsnDomain, ...] = Field(
        default=(),
        description="social-needs domains the patient agreed may be printed on their care "
        "plan (a domain also needs a positive screening to be printed)",
    )

    @property
    def contactable_caregivers(self) -> tuple[Caregiver, ...]:
        return tuple(c for c in self.caregivers if c.consent_to_contact and c.phone)


EMPTY_PROFILE = PersonProfile()
