"""What a worklist asks of the projection: filters, sort and page; how each step of a
transition is bucketed (overdue, due on the day, later), so a row shows every step that is
due, not one "current step"; and who the patient is (PatientSummary: PHI, for the people who
may see it, from the protected registry)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.protocol import RiskTier, TcmElement
from schemas.transition import TransitionState, TransitionStatus

ME = "me"  # `assignee=me`: the caller (the token's subject, the CLI's --by or user)

# What CMS TCM bills on: a step proving one of these is TCM work, which a worklist puts above
# other work (a facility handoff's discharge information) at the same escalation level.
TCM_WORK = frozenset(
    {
        TcmElement.INTERACTIVE_CONTACT,
        TcmElement.MEDICATION_RECONCILIATION,
        TcmElement.FACE_TO_FACE_VISIT,
    }
)


class Bucket(StrEnum):
    """Where one open step stands on the worklist's day."""

    OVERDUE = "overdue"  # its due time has passed (whatever the day)
    DUE_TODAY = "due_today"  # due later on the worklist's day (its facility's zone)
    LATER = "later"


class TransitionQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: TransitionStatus | None = None
    protocol: str | None = None
    facility: str | None = None
    team: str | None = Field(
        default=None, description="the care team (the practice's: site.yaml care_teams)"
    )
    assignee: str | None = Field(
        default=None, description=f"has an open step assigned to ('{ME}': the caller)"
    )
    owner: str | None = Field(
        default=None,
        max_length=200,
        description=f"the transition's owner, a care manager ('{ME}': the caller's patients)",
    )
    overdue: bool | None = Field(
        default=None, description="has (true) / has no (false) overdue step"
    )
    due_today: bool = Field(
        default=False,
        description="has a step due on the day (today, or due_on), whatever its other steps",
    )
    due_on: date | None = Field(
        default=None,
        description="the worklist's day (each facility's zone): what 'due today' means; "
        "default today",
    )
    discharged_from: date | None = None
    discharged_to: date | None = None
    risk_tier: RiskTier | None = None
    q: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="find the patient: name (word prefixes), MRN, birth date or phone",
    )
    sort: Literal["next_due", "discharged", "escalation", "urgency"] = Field(
        default="next_due", description="urgency: overdue, then due today, then the rest"
    )
    page: int = Field(default=1, ge=1, le=1_000_000)  # OFFSET stays within bigint
    page_size: int = Field(default=50, ge=1, le=500)

    def for_caller(self, subject: str) -> TransitionQuery:
        """The query with `assignee=me` and `owner=me` read as the caller's subject."""
        update = {name: subject for name in ("assignee", "owner") if getattr(self, name) == ME}
        return self.model_copy(update=update) if update else self


class PatientSummary(BaseModel):
    """Who a transition's patient is and the facts of the stay, as a care manager reads them.
    PHI: in responses to authenticated people only, each one audited with the patient key."""

    model_config = ConfigDict(frozen=True)

    patient_key: str
    name: str = ""
    family_name: str = ""
    given_name: str = ""
    birth_date: date | None = None
    age: int | None = Field(default=None, description="completed years, today")
    sex: str = Field(default="", description="PID-8 as sent")
    mrn: str = ""
    merged_mrns: tuple[str, ...] = Field(
        default=(), description="identifiers of the records merged into this one (A40 MRG-1)"
    )
    phone: str = Field(default="", description="the preferred number (PID-13 first)")
    pcp: str = ""
    diagnosis: str = Field(default="", description="principal discharge diagnosis (ICD-10)")
    diagnosis_text: str = ""
    unit: str = Field(default="", description="the discharging unit (PV1-3.1)")
    length_of_stay_days: int | None = None

    @property
    def age_and_sex(self) -> str:
        return " ".join(p for p in (str(self.age) if self.age is not None else "", self.sex) if p)


class TransitionView(TransitionState):
    """A transition's live state (the workflow query) and who its patient is."""

    patient: PatientSummary | None = None


class CareManagerLoad(BaseModel):
    """One care manager's share of a team (the supervisor's view): open transitions, how
    many are overdue or due today, today's calls (due: open call steps due by the end of
    today; made: calls and attempts they recorded today), and the rows, most urgent first.
    `owner` None: the transitions nobody owns yet."""

    owner: str | None
    open: int = 0
    overdue: int = 0
    due_today: int = 0
    calls_due_today: int = 0
    calls_made_today: int = 0
    rows: list[dict[str, Any]] = []
