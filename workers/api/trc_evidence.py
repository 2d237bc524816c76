"""The "filed" action over HTTP: a person records that a TRC admission notification or the
discharge information was filed in the outpatient record, and when (NCQA counts neither
from an ADT received by itself; store/trc_evidence.py). Idempotent: the same filing twice
is recorded once."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from store import trc_evidence
from workers.api.common import Svc, problem
from workers.api.transitions import Clinical

router = APIRouter(tags=["reports"])


class FiledBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    component: trc_evidence.Component
    at: AwareDatetime = Field(description="when the information was filed in the record")


class FiledAnswer(BaseModel):
    transition_id: str
    component: trc_evidence.Component
    at: AwareDatetime
    recorded: bool = Field(description="false: this filing was recorded before")


@router.post("/transitions/{transition_id}/filed", response_model=None)
async def record_filed(
    svc: Svc, principal: Clinical, transition_id: str, body: FiledBody
) -> FiledAnswer | JSONResponse:
    """Record that the information was filed in the outpatient record: evidence for the
    HEDIS TRC report inside the component's window."""
    known = await svc.pool.fetchval(
        "SELECT 1 FROM transitions WHERE transition_id = $1", transition_id
    )
    if known is None:
        return problem(404, "Not Found", f"There is no transition {transition_id}.")
    recorded = await trc_evidence.record(
        svc.pool,
        trc_evidence.Evidence(
            transition_id=transition_id,
            component=body.component,
            source=trc_evidence.Source.FILED,
            at=body.at,
            actor=principal.subject,
        ),
    )
    return FiledAnswer(
        transition_id=transition_id, component=body.component, at=body.at, recorded=recorded
    )
