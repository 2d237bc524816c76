"""Reports over HTTP: CMS TCM, HEDIS TRC, 30-day readmissions and social needs for the
discharges between two site dates (store/reports.py), as JSON or CSV."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from store import reports
from workers.api.auth import Principal, Role, require
from workers.api.common import Svc, problem

router = APIRouter(tags=["transitions"])  # the group it has always had in /docs


@router.get("/reports/{kind}", response_model=None)
async def get_report(
    svc: Svc,
    principal: Annotated[Principal, Depends(require(Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR))],
    kind: reports.ReportKind,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    facility: str | None = None,
    format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | Response:
    """TCM, HEDIS TRC or 30-day readmissions for discharges between two site dates."""
    if end < start:
        return problem(422, "Invalid request", "'to' is before 'from'")
    if principal.role == Role.SUPERVISOR:  # a supervisor reads their own team's figures
        if not principal.team:
            return problem(403, "Forbidden", "this supervisor token names no team")
        if facility not in (None, principal.team):
            return problem(403, "Forbidden", f"the report of {facility} is not your team's")
        facility = principal.team
    result = await reports.report(svc.pool, svc.library, kind, start, end, facility)
    if format == "csv":
        return Response(
            reports.to_csv(kind, result["rows"]),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{kind}-{start}-{end}.csv"'},
        )
    return result
