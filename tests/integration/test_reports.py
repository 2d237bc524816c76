"""Reports against a hand-computed scenario of 12 transitions written to the real projection.

Discharge Monday 2031-03-03 10:00 New York; the contact deadline is Wednesday 03-05 end of
day; the reports are asked on 2031-04-15 (every window closed). Expected figures are worked
out by hand in the comments."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from schemas.protocol_library import load_library
from schemas.transition import AttemptResult, StepStatus, StepSummary
from store import reports

NY = ZoneInfo("America/New_York")
LIBRARY = load_library(Path(__file__).resolve().parents[2] / "protocols")
DISCHARGE = datetime(2031, 3, 3, 10, 0, tzinfo=NY)
CONTACT_LIMIT = datetime(2031, 3, 5, 23, 59, 59, tzinfo=NY)
ASKED = datetime(2031, 4, 15, 9, 0, tzinfo=NY)


def on(day: int) -> datetime:
    return DISCHARGE + timedelta(days=day, hours=2)


def step(
    step_id: str,
    done: int | None = None,
    *,
    attempts: tuple[int, ...] = (),
    complexity: str | None = None,
    status: StepStatus | None = None,
    limit: datetime | None = None,
) -> StepSummary:
    return StepSummary(
        step_id=step_id,
        status=status or (StepStatus.COMPLETED if done is not None else StepStatus.OPEN),
        limit_at=limit,
        due_at=limit,
        completed_at=on(done) if done is not None else None,
        complexity=complexity,  # type: ignore[arg-type]
        attempts=tuple((on(d), AttemptResult.NO_ANSWER) for d in attempts),
    )


def home(
    contact: int | None, medrec: int | None, visit: int | None, **kw: Any
) -> list[StepSummary]:
    return [
        step(
            "interactive_contact",
            contact,
            attempts=kw.get("attempts", ()),
            limit=CONTACT_LIMIT,
        ),
        step("medication_reconciliation", medrec),
        step("follow_up_visit", visit, complexity=kw.get("complexity")),
    ]


# name: (protocol, status, risk tier, steps, readmitted day, admission notified)
SCENARIO: dict[str, tuple[str, str, str, list[StepSummary], int | None, bool]] = {
    "T01": ("discharge-home", "active", "standard", home(1, 3, 5), None, True),  # 99495
    "T02": (
        "discharge-home",
        "active",
        "high",
        home(1, 2, 6, complexity="high"),
        None,
        True,
    ),  # 99496
    "T03": (
        "discharge-home",
        "active",
        "high",
        home(1, 2, 8, complexity="high"),
        None,
        False,
    ),  # 99495
    "T04": (
        "discharge-home",
        "active",
        "standard",
        home(None, 4, 10, attempts=(1, 2)),
        None,
        False,
    ),  # 99495 by 2 attempts
    "T05": (
        "discharge-home",
        "active",
        "standard",
        home(None, 3, 9, attempts=(1,)),
        None,
        False,
    ),  # no contact
    "T06": (
        "discharge-home",
        "active",
        "standard",
        home(1, None, None),
        None,
        False,
    ),  # no visit, no medrec
    "T07": (
        "discharge-home",
        "active",
        "standard",
        home(1, 6, 4),
        None,
        False,
    ),  # medrec after visit
    "T08": (
        "facility-handoff",
        "completed",
        "standard",
        [step("discharge_summary_handoff", 0)],
        None,
        False,
    ),
    "T09": ("discharge-home", "active", "standard", home(1, None, None), 5, False),  # readmitted
    "T10": (
        "discharge-home",
        "cancelled",
        "standard",
        [
            step(s, status=StepStatus.STOPPED)
            for s in ("interactive_contact", "medication_reconciliation", "follow_up_visit")
        ],
        None,
        False,
    ),
    "T11": ("discharge-home", "active", "standard", home(3, 7, 7), None, False),  # late contact
    "T12": ("expired", "deceased", "standard", [], None, False),
}


@pytest.fixture
async def scenario(pool: asyncpg.Pool) -> str:
    facility = f"RPT{uuid.uuid4().hex[:6].upper()}"
    for name, (protocol, status, tier, steps, readmitted, notified) in SCENARIO.items():
        tid = f"{facility}-{name}"
        await pool.execute(
            """
            INSERT INTO transitions (transition_id, encounter_key, facility, protocol_id,
                protocol_version, status, discharged_at, risk_tier, lace, current_step,
                next_due_at, version, steps, readmitted_at)
            VALUES ($1, $2, $3, $4, 1, $5, $6, $7, 0, NULL, NULL, 1, $8::jsonb, $9)
            """,
            tid,
            f"enc-{tid}",
            facility,
            protocol,
            status,
            DISCHARGE,
            tier,
            json.dumps([s.model_dump(mode="json") for s in steps]),
            on(readmitted) if readmitted is not None else None,
        )
        if notified:
            await pool.execute(
                "INSERT INTO encounters (patient_key, encounter_key, kind, facility, at) "
                "VALUES ($1, $2, 'admission', $3, $4)",
                f"p-{tid}",
                f"enc-{tid}",
                facility,
                DISCHARGE - timedelta(days=4),
            )
    return facility


async def run(pool: asyncpg.Pool, kind: reports.ReportKind, facility: str) -> dict[str, Any]:
    return await reports.report(
        pool, LIBRARY, kind, date(2031, 3, 1), date(2031, 3, 31), facility=facility, now=ASKED
    )


async def test_tcm_report_codes_only_recorded_complexity_and_leaves_out_the_cancelled(
    pool: asyncpg.Pool, scenario: str
) -> None:
    result = await run(pool, "tcm", scenario)
    codes = {r["transition_id"].split("-")[-1]: r["tcm_code"] for r in result["rows"]}
    assert codes == {
        "T01": "complexity not documented",  # standard risk: never inferred from LACE
        "T02": "99496",
        "T03": "99495",
        "T04": "complexity not documented",
        "T05": "not eligible",
        "T06": "not eligible",
        "T07": "not eligible",
        "T08": "not applicable",
        "T09": "not eligible",
        "T11": "not eligible",
        "T12": "not applicable",
    }  # T10, the cancelled discharge, is left out
    assert result["excluded_cancelled"] == 1
    assert result["summary"] == {
        "discharges": 11,
        "tcm_applicable": 9,  # all but the facility handoff and the expired patient
        "in_progress": 0,
        "windows_closed": 9,
        "99496": 1,
        "99495": 1,
        "not_eligible": 5,  # T05, T06, T07, T09, T11
        "complexity_not_documented": 2,  # T01, T04
        "bundled_in_apcm": 0,
        "billable_pct": 22.2,  # 2 of 9
        "contact_windows_closed": 9,
        "contacted_within_2_business_days": 7,  # T01-T04 (T04 by 2 attempts), T06, T07, T09
        "contacted_within_2_business_days_pct": 77.8,
    }
    rows = {r["transition_id"].split("-")[-1]: r for r in result["rows"]}
    assert rows["T04"]["contact_attempts"] == 2 and rows["T03"]["visit_day"] == 8
    assert rows["T04"]["contact_attempts_on"] == "2031-03-04;2031-03-05"
    assert (rows["T02"]["contact_on"], rows["T02"]["visit_on"]) == ("2031-03-04", "2031-03-09")
    assert (rows["T02"]["complexity"], rows["T01"]["complexity"]) == (
        "high",
        "complexity not documented",
    )
    assert "medication reconciliation after the face-to-face visit" in rows["T07"]["tcm_reasons"]


async def test_trc_and_readmission_reports(pool: asyncpg.Pool, scenario: str) -> None:
    trc = await run(pool, "trc", scenario)
    assert trc["summary"] == {
        "discharges": 12,
        # T01 and T02 have their A01 only: no filing recorded (tests/integration/
        # test_trc_evidence.py), so none counts (NCQA TRC FAQ 2024-02-15)
        "trc_admission_notification_pct": 0.0,
        "trc_discharge_information_pct": 8.3,  # T08
        "trc_patient_engagement_pct": 75.0,  # all but T08, T10, T12
        "trc_medication_reconciliation_pct": 58.3,  # T01-T05, T07, T11
    }
    readmissions = await run(pool, "readmissions", scenario)
    assert readmissions["summary"] == {"discharges": 12, "readmitted_30_days": 1, "rate_pct": 8.3}
    assert [r["readmitted_day"] for r in readmissions["rows"] if r["readmitted"]] == [5]
    csv_text = reports.to_csv("readmissions", readmissions["rows"])
    lines = csv_text.strip().splitlines()
    assert (
        lines[0]
        == "transition_id,facility,protocol,discharged_on,risk_tier,readmitted,readmitted_day"
    )
    assert len(lines) == 13


async def test_report_over_http_as_json_and_csv(scenario: str, stack: Any) -> None:
    params = {"from": "2031-03-01", "to": "2031-03-31", "facility": scenario}
    tcm = await stack.http.get("/reports/tcm", params=params)
    assert tcm.status_code == 200 and tcm.json()["summary"]["99496"] == 1
    as_csv = await stack.http.get("/reports/trc", params=params | {"format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert len(as_csv.text.strip().splitlines()) == 13
    backwards = await stack.http.get("/reports/tcm", params=params | {"to": "2031-02-01"})
    assert backwards.status_code == 422
    unknown = await stack.http.get("/reports/costs", params=params)
    assert unknown.status_code == 422
