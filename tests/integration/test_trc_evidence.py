"""HEDIS TRC counted the way NCQA counts it now (TRC FAQ, 2024-02-15) and TCM bundled in APCM
(CMS 2025), on the real stack: an A01 received by itself is no admission notification; a
"filed" action recorded over HTTP within admission day .. day +2 is; a roster program of
`apcm` makes the TCM report say "bundled in APCM". Times are relative to now."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest_asyncio

from store import roster
from tests.helpers import a03, with_event
from tests.integration.care_support import ER7, Team, care_team
from tests.integration.conftest import RunningStack
from workers.runtime.settings import Settings


@pytest_asyncio.fixture
async def team(stack: RunningStack, settings: Settings) -> AsyncIterator[Team]:
    async with care_team(stack, settings) as found:
        yield found


async def admitted(team: Team, tid: str) -> datetime:
    """Send the visit's A01 (after its A03: recorded, no readmission of itself); the
    admission time the encounters table keeps."""
    raw = with_event(a03(facility=team.facility, visit=team.visits[tid]), "A01")
    sent = await team.http.post("/adt", content=raw, headers={**ER7, **team.as_("feed")})
    assert "|AA|" in sent.text, sent.text
    at: datetime = await team.services.pool.fetchval(
        "SELECT e.at FROM encounters e JOIN transitions t USING (encounter_key) "
        "WHERE t.transition_id = $1 AND e.kind = 'admission'",
        tid,
    )
    assert at is not None
    return at


async def report_row(team: Team, kind: str, tid: str) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    params = {
        "from": (today - timedelta(days=10)).isoformat(),
        "to": (today + timedelta(days=1)).isoformat(),
        "facility": team.facility,
    }
    found = await team.http.get(f"/reports/{kind}", params=params, headers=team.as_("sup.kim"))
    assert found.status_code == 200, found.text
    rows: list[dict[str, Any]] = found.json()["rows"]
    return next(r for r in rows if r["transition_id"] == tid)


async def filed(team: Team, tid: str, component: str, at: datetime) -> dict[str, Any]:
    answer = await team.http.post(
        f"/transitions/{tid}/filed",
        json={"component": component, "at": at.isoformat()},
        headers=team.as_("rn.alvarez"),
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_an_a01_alone_is_no_admission_notification_until_its_filing_is_recorded(
    team: Team,
) -> None:
    tid = await team.discharge()
    admission = await admitted(team, tid)
    row = await report_row(team, "trc", tid)
    assert row["trc_admission_notification"] is False  # the A01 was received, nothing filed

    late = await filed(team, tid, "admission_notification", admission + timedelta(days=3))
    assert late["recorded"] is True
    assert (await report_row(team, "trc", tid))["trc_admission_notification"] is False

    in_time = await filed(team, tid, "admission_notification", admission + timedelta(days=1))
    assert in_time["recorded"] is True
    assert (await report_row(team, "trc", tid))["trc_admission_notification"] is True
    again = await filed(team, tid, "admission_notification", admission + timedelta(days=1))
    assert again["recorded"] is False  # the same filing twice is recorded once


async def test_discharge_information_needs_a_filing_within_two_days_of_the_discharge(
    team: Team,
) -> None:
    tid = await team.discharge()
    assert (await report_row(team, "trc", tid))["trc_discharge_information"] is False
    discharged = datetime.now(UTC) - timedelta(hours=2)
    await filed(team, tid, "discharge_information", discharged + timedelta(minutes=30))
    assert (await report_row(team, "trc", tid))["trc_discharge_information"] is True


async def test_filing_for_an_unknown_transition_or_component_is_refused(team: Team) -> None:
    now = datetime.now(UTC).isoformat()
    unknown = await team.http.post(
        "/transitions/no-such-transition/filed",
        json={"component": "discharge_information", "at": now},
        headers=team.as_("rn.alvarez"),
    )
    assert unknown.status_code == 404 and "no transition" in unknown.json()["detail"]
    tid = await team.discharge()
    wrong = await team.http.post(
        f"/transitions/{tid}/filed",
        json={"component": "lab_results", "at": now},
        headers=team.as_("rn.alvarez"),
    )
    assert wrong.status_code == 422


async def test_an_apcm_patients_tcm_report_says_bundled_in_apcm(
    team: Team, pool: asyncpg.Pool
) -> None:
    tid = await team.discharge()
    before = await report_row(team, "tcm", tid)
    assert before["tcm_code"] != "bundled in APCM"
    patient: str = await pool.fetchval(
        "SELECT patient_key FROM encounters WHERE transition_id = $1", tid
    )
    await roster.upsert(
        pool,
        [roster.RosterRecord(patient, "MRN", "PRACTICE-1", program="APCM")],
        source_file="apcm.csv",
    )
    after = await report_row(team, "tcm", tid)
    assert after["tcm_code"] == "bundled in APCM"
    assert "G0556-G0558" in after["tcm_reasons"]
