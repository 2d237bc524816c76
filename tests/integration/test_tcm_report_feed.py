"""The TCM report and the dashboard on a feed of the real stack: a cancelled discharge (A13),
one still inside its window and three past it (discharged 20 days ago, the A03 dated in the
past). In progress, excluded, the right code or the reason; percentages over the closed
windows only, with their denominators; the patient named for a care manager (audited), not
for an auditor. Times are relative to now."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from store import dashboard, security
from store.tcm_standing import show_day
from tests.integration.care_support import Team, care_team, cli_env
from tests.integration.conftest import RunningStack, run_cli
from workers.runtime.settings import Settings

NY = ZoneInfo("America/New_York")  # the site's zone (protocols/site.yaml)
PAST = 20  # days ago: every TCM window (contact, day 7, day 14) has closed


@dataclass
class Feed:
    team: Team
    billed: str  # contact day 1, medication reconciliation day 2, visit day 5, high: 99496
    undocumented: str  # the same on days 1, 1, 6 but no complexity recorded
    missed: str  # nothing done: not eligible
    open: str  # discharged 2 hours ago, nothing done yet: in progress
    cancelled: str  # discharged yesterday, then an A13


async def complete(team: Team, tid: str, step: str, day: int, **extra: Any) -> None:
    """Complete a step on the discharge's day + `day` (the facility's date)."""
    state = await team.state(tid)
    discharged = datetime.fromisoformat(state["discharged_at"]).astimezone(NY).date()
    done = await team.http.post(
        f"/transitions/{tid}/steps/{step}/complete",
        json={"occurred_on": (discharged + timedelta(days=day)).isoformat(), **extra},
        headers=team.as_("rn.alvarez"),
    )
    assert done.status_code == 200, done.text


@pytest_asyncio.fixture
async def feed(stack: RunningStack, settings: Settings) -> AsyncIterator[Feed]:
    async with care_team(stack, settings) as team:
        billed, undocumented, missed = [await team.discharge(days_ago=PAST) for _ in range(3)]
        for tid, days, complexity in ((billed, (1, 2, 5), "high"), (undocumented, (1, 1, 6), None)):
            await complete(team, tid, "interactive_contact", days[0])
            await complete(team, tid, "medication_reconciliation", days[1])
            extra = {"complexity": complexity} if complexity else {}
            await complete(team, tid, "follow_up_visit", days[2], **extra)
        open_ = await team.discharge()
        cancelled = await team.discharge(days_ago=1)
        await team.cancel(cancelled)
        yield Feed(team, billed, undocumented, missed, open_, cancelled)


def period() -> dict[str, str]:
    today = datetime.now(NY).date()
    return {"from": (today - timedelta(days=PAST + 2)).isoformat(), "to": today.isoformat()}


async def tcm_report(feed: Feed, subject: str, **params: str) -> Any:
    found = await feed.team.http.get(
        "/reports/tcm",
        params=period() | {"facility": feed.team.facility} | params,
        headers=feed.team.as_(subject),
    )
    assert found.status_code == 200, found.text
    return found


async def test_the_tcm_report_says_in_progress_excluded_and_the_code_or_the_reason(
    feed: Feed,
) -> None:
    result = (await tcm_report(feed, "rn.alvarez")).json()
    rows = {r["transition_id"]: r for r in result["rows"]}
    assert feed.cancelled not in rows and result["excluded_cancelled"] == 1
    assert set(rows) == {feed.billed, feed.undocumented, feed.missed, feed.open}

    billed = rows[feed.billed]
    discharged = date.fromisoformat(billed["discharged_on"])
    assert (billed["tcm_state"], billed["tcm_code"], billed["complexity"]) == (
        "billable",
        "99496",
        "high",
    )
    assert billed["contact_on"] == (discharged + timedelta(days=1)).isoformat()
    assert billed["visit_on"] == (discharged + timedelta(days=5)).isoformat()
    assert billed["billing_provider"] == ""  # none recorded: blank, not guessed
    assert (billed["patient"], billed["mrn"]) == ("JANE Q DOE", "100234")

    undocumented = rows[feed.undocumented]
    assert undocumented["tcm_code"] == "complexity not documented"
    assert undocumented["complexity"] == "complexity not documented"
    assert undocumented["tcm_state"] == "not billable"

    missed = rows[feed.missed]
    assert (missed["tcm_state"], missed["tcm_code"]) == ("not billable", "not eligible")
    assert "no face-to-face visit" in missed["tcm_reasons"]

    opened = rows[feed.open]
    assert (opened["tcm_state"], opened["tcm_code"]) == ("in progress", "in progress")
    assert opened["tcm_reasons"].startswith("contact due by ")
    assert opened["tcm_reasons"].endswith("; 99496 still possible")
    seventh = date.fromisoformat(opened["discharged_on"]) + timedelta(days=7)
    assert f"visit by {show_day(seventh)} for 99496" in opened["tcm_reasons"]

    summary = result["summary"]
    assert (summary["tcm_applicable"], summary["in_progress"], summary["windows_closed"]) == (
        4,
        1,
        3,
    )
    assert (summary["99496"], summary["not_eligible"], summary["complexity_not_documented"]) == (
        1,
        1,
        1,
    )
    assert summary["billable_pct"] == 33.3  # 1 of the 3 closed windows, not of 4
    assert summary["contact_windows_closed"] == 3  # the open one's deadline is ahead
    assert summary["contacted_within_2_business_days_pct"] == 66.7


async def test_the_patient_is_named_for_a_care_manager_of_the_team_audited_not_for_an_auditor(
    feed: Feed,
) -> None:
    as_auditor = (await tcm_report(feed, "auditor")).json()
    assert all("patient" not in r and "mrn" not in r for r in as_auditor["rows"])
    as_csv = await tcm_report(feed, "rn.alvarez", format="csv")
    header, *lines = as_csv.text.strip().splitlines()
    assert header.startswith("patient,mrn,transition_id,") and len(lines) == 4
    audited = await feed.team.services.pool.fetch(
        "SELECT resource_id, patient_key FROM audit_log WHERE actor = 'rn.alvarez' "
        "AND action = 'GET /reports/{kind}'"
    )
    shown = {r["resource_id"] for r in audited if r["patient_key"]}
    assert {feed.billed, feed.open} <= shown
    _, elsewhere = await security.create_token(
        feed.team.services.pool,
        name="test rn elsewhere",
        subject="rn.elsewhere",
        role="care_manager",
        team="ELSEWHERE",
    )
    refused = await feed.team.http.get(
        "/reports/tcm",
        params=period() | {"facility": feed.team.facility},
        headers={"Authorization": f"Bearer {elsewhere}"},
    )
    assert refused.status_code == 403 and "not your team's" in refused.text


async def test_the_dashboard_counts_closed_windows_only_and_no_percentage_without_one(
    feed: Feed,
) -> None:
    result = (await tcm_report(feed, "sup.kim")).json()
    on = {r["transition_id"]: date.fromisoformat(r["discharged_on"]) for r in result["rows"]}
    services = feed.team.services
    figures = await dashboard.last_30_days(
        services.pool, services.library, facility=feed.team.facility
    )
    index = {d: (d - figures["from"]).days for d in on.values()}
    past, today = index[on[feed.billed]], index[on[feed.open]]
    assert figures["discharges"][past] == 3 and figures["discharges"][today] == 1
    assert figures["contact_windows_closed"][past] == 3
    assert figures["contacted_pct"][past] == 66.7  # billed and undocumented of 3
    assert figures["contacted_pct"][today] is None  # inside its window: not a failure
    quiet = next(i for i, n in enumerate(figures["discharges"]) if n == 0)
    assert figures["contacted_pct"][quiet] is None  # no discharges: no percentage, not 0%
    assert (figures["visits_within_7_pct"], figures["visits_within_7_of"]) == (66.7, 3)
    assert (figures["visits_within_14_pct"], figures["visits_within_14_of"]) == (66.7, 3)
    assert figures["in_progress"] == 1


async def test_carebridge_report_tcm_shows_the_same_standing(
    feed: Feed, temporal_env: WorkflowEnvironment, database_url: str
) -> None:
    dates = period()
    shown = await run_cli(
        cli_env(temporal_env, database_url),
        "report",
        "tcm",
        "--from",
        dates["from"],
        "--to",
        dates["to"],
        "--facility",
        feed.team.facility,
        "--csv",
    )
    assert shown.exit_code == 0, shown.output
    rows = {line.split(",")[0]: line for line in shown.output.strip().splitlines()[1:]}
    assert set(rows) == {feed.billed, feed.undocumented, feed.missed, feed.open}
    assert ",in progress," in rows[feed.open] and ",99496," in rows[feed.billed]
    assert "complexity not documented" in rows[feed.undocumented]
