"""Readmission risk (LACE index, van Walraven et al., CMAJ 2010) as recorded on a transition."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.protocol import RiskTier


class RiskAssessment(BaseModel):
    model_config = ConfigDict(frozen=True)

    lace: int = Field(ge=0, le=19)
    tier: RiskTier
    length_of_stay_days: int | None = None
    length_of_stay_points: int = 0
    acute_points: int = 0
    charlson_score: int = 0
    comorbidity_points: int = 0
    ed_visits: int = 0
    ed_points: int = 0
    notes: tuple[str, ...] = Field(default=(), description="what was missing or assumed")
    diagnosis_codes: tuple[str, ...] = Field(
        default=(), description="the DG1-3 codes (ICD-10) the C points were counted from. PHI"
    )


STANDARD_RISK = RiskAssessment(lace=0, tier=RiskTier.STANDARD, notes=("not assessed",))
