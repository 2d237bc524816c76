"""What a worklist asks of the projection: filters, sort and page; and how each step of a
transition is bucketed (overdue, due on the day, later), so a row shows every step that is
due, not one "current step"."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.protocol import RiskTier, TcmElement
from schemas.transition import TransitionStatus

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
    sort: Literal["next_due", "discharged", "escalation"] = "next_due"
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=50, ge=1, le=500)

    def for_caller(self, subject: str) -> TransitionQuery:
        """The query with `assignee=me` read as the caller's subject."""
        if self.assignee != ME:
            return self
        return self.model_copy(update={"assignee": subject})
