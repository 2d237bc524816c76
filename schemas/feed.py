"""What the systems around a practice say without a person typing it: scheduling (SIU) of
the follow-up visit, the patient's arrival at a practice clinic (ADT^A04 / A01 at a location
the site lists) and the hospital's discharge summary (MDM^T02/T04), and the site's table of
what counts (its practice clinics, the document types that are discharge information)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# SIU triggers: S12 new, S13 rescheduled, S14 modified, S15 cancelled, S17 deleted, S26
# no-show. The first three book (or move) the follow-up visit; the others clear it.
BOOKINGS = frozenset({"S12", "S13", "S14"})
CLEARINGS = frozenset({"S15", "S17", "S26"})
SCHEDULING_EVENTS = BOOKINGS | CLEARINGS
# MDM: T02 original document notification and content, T04 document status change
# notification and content.
DOCUMENT_EVENTS = frozenset({"T02", "T04"})


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
    discharge_documents: tuple[str, ...] = Field(
        default=("DS", "TS"),
        description="TXA-2 document types that are TRC discharge information (HL7 table "
        "0270: DS discharge summary, TS transfer summary)",
    )

    def clinic_at(self, facility: str, location: str) -> PracticeClinic | None:
        point_of_care = location.split("^")[0]
        return next((c for c in self.practice_clinics if c.matches(facility, point_of_care)), None)
