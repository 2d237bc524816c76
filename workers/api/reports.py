"""Reports over HTTP: CMS TCM, HEDIS TRC, 30-day readmissions and social needs for the
discharges between two site dates (store/reports.py), as JSON or CSV. A care manager's or a
supervisor's TCM report names each row's patient (name, MRN), and each patient shown is
audited; the other roles read the same rows without them."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from store import reports
from store.report_patients import PATIENT_COLUMNS, with_patients
from workers.api.audit_trail import audit_shown
from workers.api.auth import CLINICAL, Principal, Role, require
from workers.api.common import Svc, problem

router = APIRouter(tags=["transitions"])  # the group it has always had in /docs


@router.get("/reports/{kind}", response_model=None)
async def get_report(
    request: Request,
    svc: Svc,
    principal: Annotated[
        Principal,
        Depends(require(Role.CARE_MANAGER, Role.SUPERVISOR, Role.OPERATOR, Role.AUDITOR)),
    ],
    kind: reports.ReportKind,
    start: Annotated[date, Query(alias="from")],
    end: Annotated[date, Query(alias="to")],
    facility: str | None = None,
    format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | Response:
    """TCM, HEDIS TRC, 30-day readmissions or social needs for discharges between two site
    dates; the TCM rows of a care manager or supervisor name the patient."""
    if end < start:
        return problem(422, "Invalid request", "'to' is before 'from'")
    if principal.role == Role.SUPERVISOR and not principal.team:
        return problem(403, "Forbidden", "this supervisor token names no team")
    if principal.role in CLINICAL and principal.team:  # their own team's figures
        if facility not in (None, principal.team):
            return problem(403, "Forbidden", f"the report of {facility} is not your team's")
        facility = principal.team
    result = await reports.report(svc.pool, svc.library, kind, start, end, facility)
    extra: tuple[str, ...] = ()
    if kind == "tcm" and principal.role in CLINICAL:
        result["rows"] = await with_patients(svc.pool, svc.field_cipher, result["rows"])
        audit_shown(request, result["rows"])
        extra = PATIENT_COLUMNS
    if format == "csv":
        return Response(
            reports.to_csv(kind, result["rows"], extra),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{kind}-{start}-{end}.csv"'},
        )
    return result
