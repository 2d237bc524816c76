"""What a worklist asks of the projection: filters, sort and page."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.protocol import RiskTier
from schemas.transition import TransitionStatus


class TransitionQuery(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: TransitionStatus | None = None
    protocol: str | None = None
    facility: str | None = None
    assignee: str | None = Field(default=None, description="has an open step assigned to")
    overdue: bool | None = Field(
        default=None, description="has (true) / has no (false) overdue step"
    )
    due_today: bool = Field(default=False, description="next due time falls today (site zone)")
    discharged_from: date | None = None
    discharged_to: date | None = None
    risk_tier: RiskTier | None = None
    sort: Literal["next_due", "discharged", "escalation"] = "next_due"
    page: int = Field(default=1, ge=1)
    page_size: int = Field(default=50, ge=1, le=500)
