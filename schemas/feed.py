"""What the systems around a practice say without a person typing it: scheduling (SIU) of
the follow-up visit, the patient's arrival at a practice clinic (ADT^A04 / A01 at a location
the site lists) and the hospital's discharge summary (MDM^T02/T04), and the site's table of
what counts (its practice clinics, the document types that are discharge information)."""

from __future__ import annotations

from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

# SIU triggers: S12 new, S13 rescheduled, S14 modified, S15 cancelled, S17 deleted, S26
# no-show. The first three book (or move) the follow-up visit; the others clear it.
BOOKINGS = frozenset({"S12", "S13", "S14"})
CLEARINGS = frozenset({"S15", "S17", "S26"})
SCHEDULING_EVENTS = BOOKINGS | CLEARINGS
# MDM: T02 original document notification and content, T04 document status change
# notification and content.
DOCUMENT_EVENTS = frozenset({"T02", "T04"})
# ORU^R01 whose OBR-4 code the site lists (feed.discharge_result_codes): a discharge summary
# sent as a result. Without a listed code ORU stays an unsupported message type (AR).
RESULT_EVENTS = frozenset({"R01"})


class Appointment(BaseModel):
    """An SIU message's appointment: no patient data (ids, the time, the resources)."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default="", description="SCH-2.1 filler appointment id, else SCH-1.1")
    at: AwareDatetime | None = Field(
        default=None, description="start: AIS-4, else TQ1-7, else SCH-11.4"
    )
    provider: str = Field(default="", description="AIP-3: the provider's name, else id")
    location: str = Field(default="", description="AIL-3.1 point of care (the clinic)")


class DocumentNotice(BaseModel):
    """An MDM message's document (TXA): its type and when it was written, not its text."""

    model_config = ConfigDict(frozen=True)

    type: str = Field(default="", description="TXA-2 document type (HL7 table 0270)")
    at: AwareDatetime | None = Field(
        default=None, description="TXA-4 activity time, else TXA-6 origination, else the event"
    )
    number: str = Field(default="", description="TXA-12.1 unique document number")


class PracticeClinic(BaseModel):
    """A practice location: an A04 (or A01) here is the patient at the follow-up visit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    location: str = Field(min_length=1, max_length=80, description="PV1-3.1 point of care")
    facility: str = Field(default="", max_length=80, description="MSH-4; empty: any sender")
    name: str = Field(default="", max_length=120)

    def matches(self, facility: str, point_of_care: str) -> bool:
        return point_of_care == self.location and self.facility in ("", facility)


class FeedConfig(BaseModel):
    """site.yaml `feed`: which clinics are the practice's, which documents are discharge
    information."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    practice_clinics: tuple[PracticeClinic, ...] = Field(
        default=(), description="where an arrival (A04 / A01) completes the face-to-face visit"
    )
    confirm_visits: bool = Field(
        default=False,
        description="an arrival reports the visit ('visit reported, confirm') instead of "
        "completing it: a care manager completes it with the day",
    )
    discharge_documents: tuple[str, ...] = Field(
        default=("DS", "TS"),
        description="TXA-2 document types that are TRC discharge information (HL7 table "
        "0270: DS discharge summary, TS transfer summary)",
    )
    discharge_result_codes: tuple[str, ...] = Field(
        default=(),
        description="ORU^R01 OBR-4.1 codes that are discharge information (LOINC 18842-5 "
        "discharge summary, say); empty: ORU is refused as unsupported (AR)",
    )

    def clinic_at(self, facility: str, location: str) -> PracticeClinic | None:
        point_of_care = location.split("^")[0]
        return next((c for c in self.practice_clinics if c.matches(facility, point_of_care)), None)


class EventEffect(StrEnum):
    COMPLETES = "completes"  # the step is done, on the message's time
    BOOKS = "books"  # SIU: the step's appointment is booked, moved or cleared


FEED_MESSAGES = {
    "ADT": frozenset({"A01", "A04"}),
    "SIU": SCHEDULING_EVENTS,
    "MDM": DOCUMENT_EVENTS,
    "ORU": RESULT_EVENTS,
}
DOCUMENT_MESSAGES = frozenset({"MDM", "ORU"})


class StepEvent(BaseModel):
    """A feed message a protocol step declares (protocol YAML `events`): which message and
    triggers, where (the site's practice clinics and/or PV1-3.1 / AIL-3.1 patterns), which
    patient classes and document types, within which days after the discharge, and what it
    does to the step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message: Literal["ADT", "SIU", "MDM", "ORU"]
    triggers: tuple[str, ...] = Field(min_length=1)
    effect: EventEffect = EventEffect.COMPLETES
    at_practice_clinic: bool = Field(
        default=False, description="at a clinic site.yaml feed.practice_clinics lists"
    )
    locations: tuple[str, ...] = Field(
        default=(), description="point-of-care patterns (fnmatch: CARDIO*); empty = any"
    )
    patient_classes: tuple[str, ...] = Field(default=(), description="PV1-2; empty = any")
    document_types: tuple[str, ...] = Field(
        default=(),
        description="MDM TXA-2 / ORU OBR-4.1; empty = the site's discharge_documents / codes",
    )
    from_day: int = Field(default=0, ge=0, description="first day after the discharge (day 0)")
    to_day: int | None = Field(default=None, ge=0, description="last day; default: the period")

    @model_validator(mode="after")
    def _consistent(self) -> StepEvent:
        unknown = sorted(set(self.triggers) - FEED_MESSAGES[self.message])
        if unknown:
            known = ", ".join(sorted(FEED_MESSAGES[self.message]))
            raise ValueError(f"{self.message} triggers {', '.join(unknown)}: not one of {known}")
        if (self.effect == EventEffect.BOOKS) != (self.message == "SIU"):
            raise ValueError("SIU messages book (effect: books); ADT and MDM complete")
        if self.document_types and self.message not in DOCUMENT_MESSAGES:
            raise ValueError("document_types are for MDM and ORU messages")
        if self.to_day is not None and self.to_day < self.from_day:
            raise ValueError("to_day is before from_day")
        return self

    def matches(self, facts: FeedFacts) -> bool:
        located = not self.at_practice_clinic and not self.locations
        if self.at_practice_clinic and facts.at_practice_clinic:
            located = True
        if any(fnmatchcase(facts.point_of_care, pattern) for pattern in self.locations):
            located = True
        return (
            facts.message == self.message
            and facts.trigger in self.triggers
            and located
            and (not self.patient_classes or facts.patient_class in self.patient_classes)
            and (not self.document_types or facts.document_type in self.document_types)
            and facts.day >= self.from_day
            and (self.to_day is None or facts.day <= self.to_day)
        )


class FeedFacts(BaseModel):
    """What a step's event rules are matched against: one message, as the router saw it."""

    model_config = ConfigDict(frozen=True)

    message: str
    trigger: str
    day: int = Field(description="days after the discharge, facility calendar (day 0)")
    patient_class: str = ""
    point_of_care: str = ""
    at_practice_clinic: bool = False
    document_type: str = ""


VISIT_EVENTS = (
    StepEvent(message="SIU", triggers=tuple(sorted(SCHEDULING_EVENTS)), effect=EventEffect.BOOKS),
    StepEvent(message="ADT", triggers=("A01", "A04"), at_practice_clinic=True),
)
DISCHARGE_INFORMATION_EVENTS = (
    StepEvent(message="MDM", triggers=("T02", "T04")),
    StepEvent(message="ORU", triggers=("R01",)),
)
