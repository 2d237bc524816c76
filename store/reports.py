"""Reports from the projection: CMS TCM, HEDIS TRC, 30-day readmissions and social needs
(found and resolved by domain; positive screens connected to a resource within 14 days).

Each transition discharged in the period is judged by the same pure functions the workflow
uses for its closing outcome (schemas/outcome.py), on the step summaries the projection
keeps, so a report on open transitions says where they stand today.

HEDIS TRC's admission notification and discharge information count only with evidence that
the information was filed in the outpatient record (store/trc_evidence.py: a recorded
"filed" action or a document event) within the component's day 0 .. day +2: an ADT
received by itself meets neither (NCQA TRC FAQ, 2024-02-15). A patient whose roster
program is APCM has TCM "bundled in APCM": TCM is not billable in a month the practice
bills Advanced Primary Care Management, G0556-G0558 (CMS CY2025 PFS final rule).

The TCM report leaves out cancelled discharges (counted apart), says where each transition
stands on the report's `now` (store/tcm_standing.py: billable with its code, not billable and
why, or in progress with what is still possible) and its percentages are over the
transitions whose window has closed, with that denominator beside them.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg

from schemas.outcome import (
    COMPLEXITY_NOT_DOCUMENTED,
    contact_requirement_met,
    day_after_discharge,
    trc_outcome,
)
from schemas.protocol import RiskTier, StepKind, TcmElement
from schemas.protocol_library import ProtocolLibrary
from schemas.risk import RiskAssessment
from schemas.transition import (
    Attempt,
    StepState,
    StepStatus,
    StepSummary,
    TransitionInput,
    TransitionStatus,
)
from store.tcm_standing import BUNDLED_IN_APCM, IN_PROGRESS, standing

ReportKind = Literal["tcm", "trc", "readmissions", "social-needs"]
CONNECTED_WITHIN = timedelta(days=14)
APCM_PROGRAM = "apcm"


async def _rows(
    pool: asyncpg.Pool, start: date, end: date, zone: ZoneInfo, facility: str | None
) -> list[asyncpg.Record]:
    return await pool.fetch(
        """
        SELECT t.transition_id, t.facility, t.protocol_id, t.protocol_version, t.status,
               t.discharged_at, t.risk_tier, t.lace, t.steps, t.readmitted_at,
               (SELECT min(e.at) FROM encounters e WHERE e.encounter_key = t.encounter_key
                AND e.kind = 'admission') AS admitted_at,
               ARRAY(SELECT v.at FROM trc_evidence v WHERE v.transition_id = t.transition_id
                     AND v.component = 'admission_notification') AS admission_evidence,
               ARRAY(SELECT v.at FROM trc_evidence v WHERE v.transition_id = t.transition_id
                     AND v.component = 'discharge_information') AS discharge_evidence,
               (SELECT r.program FROM encounters e JOIN roster r ON r.patient_key = e.patient_key
                WHERE e.encounter_key = t.encounter_key AND r.program IS NOT NULL
                LIMIT 1) AS program
        FROM transitions t
        WHERE t.discharged_at >= $1 AND t.discharged_at < $2
          AND ($3::text IS NULL OR t.facility = $3)
        ORDER BY t.discharged_at, t.transition_id
        """,
        datetime.combine(start, time(0), tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone),
        facility,
    )


def _states(steps_json: str) -> dict[str, StepState]:
    states = {}
    for raw in json.loads(steps_json):
        summary = StepSummary.model_validate(raw)
        states[summary.step_id] = StepState(
            step_id=summary.step_id,
            title=summary.step_id,
            kind=StepKind.HUMAN_TASK,
            owner_role="",
            status=summary.status,
            due_at=summary.due_at,
            limit_at=summary.limit_at,
            overdue_since=summary.overdue_since,
            missed_before_arrival=summary.missed_before_arrival,
            completed_at=summary.completed_at,
            complexity=summary.complexity,
            attempts=[Attempt(at=at, by="", result=result) for at, result in summary.attempts],
        )
    return states


def _day(instant: datetime | None, discharged: datetime, zone: ZoneInfo) -> int | None:
    return None if instant is None else day_after_discharge(instant, discharged, zone)


def _evidenced(evidence: list[datetime], since: datetime | None, days: int, zone: ZoneInfo) -> bool:
    """Some evidence on the local day of `since` through day +`days`."""
    if since is None:
        return False
    return any(0 <= day_after_discharge(at, since, zone) <= days for at in evidence)


def _on(instant: datetime | None, zone: ZoneInfo) -> str | None:
    return None if instant is None else instant.astimezone(zone).date().isoformat()


def _provider(steps_json: str, step_id: str | None) -> str:
    """The visit's billing provider where the projection records one (else blank): a
    `billing_provider`, else the provider the visit was booked with."""
    for raw in json.loads(steps_json):
        if raw.get("step_id") == step_id:
            return str(raw.get("billing_provider") or raw.get("appointment_with") or "")
    return ""


def _judge(row: asyncpg.Record, library: ProtocolLibrary, now: datetime) -> dict[str, Any]:
    protocol = library.versions[row["protocol_id"]][row["protocol_version"]]
    site = library.site
    calendar = site.calendar_for(row["facility"])
    zone = calendar.zone()
    transition = TransitionInput(
        transition_id=row["transition_id"],
        encounter_key="",
        facility=row["facility"],
        discharged_at=row["discharged_at"],
        protocol=protocol,
        risk=RiskAssessment(lace=row["lace"], tier=RiskTier(row["risk_tier"])),
        calendar=calendar,
        policy=site.policy,
    )
    steps = _states(row["steps"])
    status = TransitionStatus(row["status"])
    by_element = {
        rule.tcm_element: steps.get(rule.id) for rule in protocol.steps if rule.tcm_element
    }
    contact = by_element.get(TcmElement.INTERACTIVE_CONTACT)
    visit = by_element.get(TcmElement.FACE_TO_FACE_VISIT)
    apcm = (row["program"] or "").strip().lower() == APCM_PROGRAM
    tcm = standing(transition, steps, status, row["readmitted_at"], now, apcm=apcm)
    trc = trc_outcome(transition, steps)
    discharged = row["discharged_at"]
    days = site.policy.trc_discharge_information_days
    contacted = contact is not None and contact.status == StepStatus.COMPLETED
    visited = visit is not None and visit.status == StepStatus.COMPLETED
    complexity = ""
    if visited and visit is not None:
        complexity = visit.complexity.value if visit.complexity else COMPLEXITY_NOT_DOCUMENTED
    return {
        "transition_id": row["transition_id"],
        "facility": row["facility"],
        "protocol": row["protocol_id"],
        "status": row["status"],
        "discharged_on": discharged.astimezone(zone).date().isoformat(),
        "risk_tier": row["risk_tier"],
        "tcm_applicable": tcm.state != "not applicable",
        "tcm_state": tcm.state,
        "contact_on": _on(contact.completed_at, zone) if contacted and contact else None,
        "contact_attempts_on": ";".join(
            a.at.astimezone(zone).date().isoformat() for a in contact.attempts
        )
        if contact
        else "",
        "contact_within_2_business_days": contact_requirement_met(transition, contact)[0]
        if contact
        else False,
        "contact_attempts": len(contact.attempts) if contact else 0,
        "visit_on": _on(visit.completed_at, zone) if visited and visit else None,
        "visit_day": _day(visit.completed_at if visited and visit else None, discharged, zone),
        "complexity": complexity,
        "billing_provider": _provider(row["steps"], visit.step_id if visit else None),
        "tcm_code": tcm.code,
        "tcm_reasons": tcm.reasons,
        "_contact_closed": tcm.contact_closed,
        "_visit_7_closed": tcm.visit_7_closed,
        "_visit_14_closed": tcm.visit_14_closed,
        "trc_admission_notification": _evidenced(
            list(row["admission_evidence"]), row["admitted_at"], days, zone
        ),
        "trc_discharge_information": trc.discharge_information
        or _evidenced(list(row["discharge_evidence"]), discharged, days, zone),
        "trc_patient_engagement": trc.patient_engagement,
        "trc_medication_reconciliation": trc.medication_reconciliation,
        "readmitted": row["readmitted_at"] is not None,
        "readmitted_day": _day(row["readmitted_at"], discharged, zone),
    }


def _social_needs(row: asyncpg.Record, library: ProtocolLibrary, now: datetime) -> dict[str, Any]:
    """Screening and referrals of one transition, from its step summaries: a referral step
    that is not `not_needed` after a completed screening is a positive domain."""
    protocol = library.versions[row["protocol_id"]][row["protocol_version"]]
    summaries = {
        raw["step_id"]: StepSummary.model_validate(raw) for raw in json.loads(row["steps"])
    }
    screening = next(
        (
            summaries.get(rule.id)
            for rule in protocol.steps
            if rule.kind == StepKind.SCREENING and rule.id in summaries
        ),
        None,
    )
    screened_at = (
        screening.completed_at if screening and screening.status == StepStatus.COMPLETED else None
    )
    positive: list[str] = []
    connected: list[str] = []
    connected_in_time = False
    for rule in protocol.steps:
        step = summaries.get(rule.id)
        if rule.referral_for is None or step is None or screened_at is None:
            continue
        if step.status == StepStatus.NOT_NEEDED:
            continue
        positive.append(rule.referral_for.value)
        if step.status == StepStatus.COMPLETED and step.outcome == "connected":
            connected.append(rule.referral_for.value)
            if step.completed_at and step.completed_at - screened_at <= CONNECTED_WITHIN:
                connected_in_time = True
    zone = library.site.zone_for(row["facility"])
    return {
        "transition_id": row["transition_id"],
        "facility": row["facility"],
        "discharged_on": row["discharged_at"].astimezone(zone).date().isoformat(),
        "screened": screened_at is not None,
        "positive_domains": ";".join(positive),
        "connected_domains": ";".join(connected),
        "connected_within_14_days": connected_in_time,
        "_positive": positive,
        "_screening_step": screening is not None,
    }


def _summarise_social_needs(rows: list[dict[str, Any]]) -> dict[str, Any]:
    eligible = [r for r in rows if r["_screening_step"]]
    screened = [r for r in eligible if r["screened"]]
    positive = [r for r in screened if r["_positive"]]
    domains: dict[str, dict[str, int]] = {}
    for r in screened:
        for domain in r["_positive"]:
            domains.setdefault(domain, {"found": 0, "connected": 0})["found"] += 1
        for domain in filter(None, r["connected_domains"].split(";")):
            domains[domain]["connected"] += 1
    connected_in_time = sum(r["connected_within_14_days"] for r in positive)
    return {
        "discharges_with_screening_step": len(eligible),
        "screened": len(screened),
        "positive_screens": len(positive),
        "by_domain": domains,
        "positive_with_resource_connected_within_14_days": connected_in_time,
        "positive_with_resource_connected_within_14_days_pct": _rate(
            connected_in_time, len(positive)
        ),
    }


COLUMNS: dict[ReportKind, tuple[str, ...]] = {
    "tcm": (
        "transition_id",
        "facility",
        "protocol",
        "status",
        "discharged_on",
        "risk_tier",
        "tcm_state",
        "contact_on",
        "contact_attempts_on",
        "contact_within_2_business_days",
        "contact_attempts",
        "visit_on",
        "visit_day",
        "complexity",
        "billing_provider",
        "tcm_code",
        "tcm_reasons",
    ),
    "trc": (
        "transition_id",
        "facility",
        "discharged_on",
        "trc_admission_notification",
        "trc_discharge_information",
        "trc_patient_engagement",
        "trc_medication_reconciliation",
    ),
    "readmissions": (
        "transition_id",
        "facility",
        "protocol",
        "discharged_on",
        "risk_tier",
        "readmitted",
        "readmitted_day",
    ),
    "social-needs": (
        "transition_id",
        "facility",
        "discharged_on",
        "screened",
        "positive_domains",
        "connected_domains",
        "connected_within_14_days",
    ),
}


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def tcm_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts over the TCM transitions; a percentage is over those whose window has closed
    (in progress ones are not failures), its denominator beside it, None when there is none."""
    applicable = [r for r in rows if r["tcm_applicable"]]
    closed = [r for r in applicable if r["tcm_state"] != IN_PROGRESS]
    codes = [r["tcm_code"] for r in closed]
    billable = codes.count("99496") + codes.count("99495")
    contact_closed = [r for r in applicable if r["_contact_closed"]]
    contacted = sum(r["contact_within_2_business_days"] for r in contact_closed)
    return {
        "discharges": len(rows),
        "tcm_applicable": len(applicable),
        "in_progress": len(applicable) - len(closed),
        "windows_closed": len(closed),
        "99496": codes.count("99496"),
        "99495": codes.count("99495"),
        "not_eligible": codes.count("not eligible"),
        "complexity_not_documented": codes.count(COMPLEXITY_NOT_DOCUMENTED),
        "bundled_in_apcm": codes.count(BUNDLED_IN_APCM),
        "billable_pct": _rate(billable, len(closed)),
        "contact_windows_closed": len(contact_closed),
        "contacted_within_2_business_days": contacted,
        "contacted_within_2_business_days_pct": _rate(contacted, len(contact_closed)),
    }


def summarise(kind: ReportKind, rows: list[dict[str, Any]]) -> dict[str, Any]:
    if kind == "social-needs":
        return _summarise_social_needs(rows)
    if kind == "tcm":
        return tcm_summary(rows)
    if kind == "trc":
        components = (
            "trc_admission_notification",
            "trc_discharge_information",
            "trc_patient_engagement",
            "trc_medication_reconciliation",
        )
        return {"discharges": len(rows)} | {
            f"{c}_pct": _rate(sum(r[c] for r in rows), len(rows)) for c in components
        }
    readmitted = sum(r["readmitted"] for r in rows)
    return {
        "discharges": len(rows),
        "readmitted_30_days": readmitted,
        "rate_pct": _rate(readmitted, len(rows)),
    }


async def judged(
    pool: asyncpg.Pool,
    library: ProtocolLibrary,
    kind: ReportKind,
    start: date,
    end: date,
    facility: str | None = None,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], int, int]:
    """Every figure of each transition discharged in [start, end] (site dates) as it stands
    at `now` (default: the current time), the cancelled discharges the TCM report leaves out,
    and the transitions whose protocol version is no longer loaded."""
    judge = _social_needs if kind == "social-needs" else _judge
    rows_in_period = await _rows(pool, start, end, library.site.calendar_zone(), facility)
    cancelled = 0
    if kind == "tcm":
        kept = [r for r in rows_in_period if r["status"] != TransitionStatus.CANCELLED]
        cancelled, rows_in_period = len(rows_in_period) - len(kept), kept
    # A transition whose protocol version is no longer in the folder cannot be judged: it is
    # counted, not guessed at (put the old file back to report on it).
    known = [
        r
        for r in rows_in_period
        if r["protocol_version"] in library.versions.get(r["protocol_id"], {})
    ]
    at = now or datetime.now(UTC)
    return [judge(row, library, at) for row in known], cancelled, len(rows_in_period) - len(known)


async def report(
    pool: asyncpg.Pool,
    library: ProtocolLibrary,
    kind: ReportKind,
    start: date,
    end: date,
    facility: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Rows (one per transition discharged in [start, end], site dates) and a summary, as
    they stand at `now`. The TCM report leaves cancelled discharges out
    (`excluded_cancelled` counts them)."""
    rows, cancelled, unknown = await judged(pool, library, kind, start, end, facility, now)
    return {
        "report": kind,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "summary": summarise(kind, rows),
        "not_judged_protocol_not_loaded": unknown,
        "rows": [{column: r[column] for column in COLUMNS[kind]} for r in rows],
    } | ({"excluded_cancelled": cancelled} if kind == "tcm" else {})


def to_csv(kind: ReportKind, rows: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> str:
    """The rows as CSV: the report's columns, then `extra` ones (e.g. the patient's)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=(*extra, *COLUMNS[kind]), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
