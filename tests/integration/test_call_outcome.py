"""The outreach call's outcome on the real stack: one form over HTTP and the CLI, mapped onto
the steps it informs; red flags reach the notification outbox at once; the visit's day and
its supervisor's correction; refusals read as sentences; the notes and call findings show
in `carebridge show`, while the plain-text timeline keeps controlled words only. Times are
relative to now."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.helpers import assert_eventually
from tests.integration.care_support import Team, care_team, cli_env
from tests.integration.conftest import RunningStack, run_cli
from workers.runtime.settings import Settings

NY = ZoneInfo("America/New_York")  # the site's zone (protocols/site.yaml)


@pytest_asyncio.fixture
async def team(stack: RunningStack, settings: Settings) -> AsyncIterator[Team]:
    async with care_team(stack, settings) as found:
        yield found


def steps(state: dict[str, object]) -> dict[str, dict[str, object]]:
    return {s["step_id"]: s for s in state["steps"]}  # type: ignore[attr-defined, index]


async def test_a_call_completes_the_contact_books_the_visit_and_pages_a_clinician(
    team: Team, pool: asyncpg.Pool
) -> None:
    tid = await team.discharge()
    appointment = (datetime.now(UTC) + timedelta(days=4)).replace(microsecond=0)
    called = await team.http.post(
        f"/transitions/{tid}/steps/interactive_contact/calls",
        json={
            "reached": "patient",
            "medication_problems": True,
            "medication_notes": "ran out of metoprolol",
            "appointment_at": appointment.isoformat(),
            "red_flags": ["shortness_of_breath"],
            "social_needs": False,
            "note": "spoke with her at home",
        },
        headers=team.as_("rn.alvarez"),
    )
    assert called.status_code == 200, called.text
    assert called.json()["by"] == "rn.alvarez"  # the token's subject
    found = steps(await team.state(tid))
    contact, visit, medrec = (
        found["interactive_contact"],
        found["follow_up_visit"],
        found["medication_reconciliation"],
    )
    assert (contact["status"], contact["outcome"]) == ("completed", "reached patient")
    assert datetime.fromisoformat(str(visit["appointment_at"])) == appointment
    assert visit["status"] == "open"
    assert [e["finding"] for e in medrec["evidence"]] == ["medication problems found"]  # type: ignore[attr-defined]

    async def paged() -> asyncpg.Record:
        row = await pool.fetchrow(
            "SELECT role, level, channel, transport FROM notifications WHERE transition_id = $1",
            tid,
        )
        assert row is not None
        return row

    notice = await assert_eventually(paged, within=30)
    assert (notice["role"], notice["level"], notice["channel"]) == ("clinician", 0, "page")
    details = {e["kind"]: e["detail"] for e in await team.timeline(tid)}
    assert details["call"] == (
        "reached patient; medication problems found; appointment booked; "
        "1 red flag(s): clinician notified; no social needs"
    )
    assert details["completed"] == "reached patient"
    stored = await pool.fetchval(
        "SELECT string_agg(detail, ' ') FROM transition_events WHERE transition_id = $1", tid
    )
    assert "metoprolol" not in stored and "spoke with her" not in stored  # plain text at rest


async def test_calls_that_cannot_apply_are_refused_in_sentences(team: Team) -> None:
    tid = await team.discharge()
    as_rn = team.as_("rn.alvarez")
    base = f"/transitions/{tid}/steps"
    nobody = await team.http.post(
        f"{base}/interactive_contact/calls",
        json={"reached": "nobody", "medication_problems": True},
        headers=as_rn,
    )
    assert nobody.status_code == 422
    assert nobody.json()["detail"] == (
        "body: a call that reached nobody cannot record medication problems."
    )
    medrec = await team.http.post(
        f"{base}/medication_reconciliation/calls", json={"reached": "patient"}, headers=as_rn
    )
    assert medrec.status_code == 409
    assert "'medication_reconciliation' is not a call" in medrec.json()["detail"]
    future = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    later = await team.http.post(
        f"{base}/interactive_contact/calls",
        json={"reached": "patient", "at": future},
        headers=as_rn,
    )
    assert (
        later.status_code == 409 and later.json()["detail"] == "The call cannot be in the future."
    )
    left = await team.http.post(
        f"{base}/interactive_contact/calls",
        json={"reached": "nobody", "left_message": True},
        headers=as_rn,
    )
    assert left.status_code == 200
    attempts = steps(await team.state(tid))["interactive_contact"]["attempts"]
    assert [a["result"] for a in attempts] == ["left_message"]  # type: ignore[attr-defined]


async def test_a_visit_on_its_day_and_a_supervisors_correction(team: Team) -> None:
    tid = await team.discharge(days_ago=3)
    state = await team.state(tid)
    discharge_day = datetime.fromisoformat(state["discharged_at"]).astimezone(NY).date()
    today = datetime.now(NY).date()
    base = f"/transitions/{tid}/steps/follow_up_visit"
    tomorrow = await team.http.post(
        f"{base}/complete",
        json={"occurred_on": (today + timedelta(days=1)).isoformat(), "complexity": "high"},
        headers=team.as_("rn.alvarez"),
    )
    assert tomorrow.status_code == 409
    assert "cannot be in the future" in tomorrow.json()["detail"]
    visit_day = discharge_day + timedelta(days=1)
    done = await team.http.post(
        f"{base}/complete",
        json={"occurred_on": visit_day.isoformat(), "complexity": "moderate"},
        headers=team.as_("rn.alvarez"),
    )
    assert done.status_code == 200, done.text
    assert datetime.fromisoformat(done.json()["completed_at"]).astimezone(NY).date() == visit_day
    body = {"complexity": "high", "reason": "the provider's note says high"}
    by_rn = await team.http.post(f"{base}/correction", json=body, headers=team.as_("rn.alvarez"))
    assert by_rn.status_code == 403
    corrected = await team.http.post(f"{base}/correction", json=body, headers=team.as_("sup.kim"))
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["complexity"] == "high"
    assert corrected.json()["corrections"][0]["changes"] == "complexity moderate -> high"
    kinds = [(e["kind"], e["actor"]) for e in await team.timeline(tid)]
    assert ("corrected", "sup.kim") in kinds


async def test_calls_and_notes_from_the_cli_show_in_show(
    team: Team, temporal_env: WorkflowEnvironment, database_url: str
) -> None:
    env = cli_env(temporal_env, database_url)
    tid = await team.discharge()
    appointment = (datetime.now(NY) + timedelta(days=5)).replace(second=0, microsecond=0)
    called = await run_cli(
        env,
        "call",
        tid,
        "--by",
        "rn.patel",
        "--reached",
        "caregiver",
        "--appointment",
        appointment.replace(tzinfo=None).isoformat(),  # local, in the facility's zone (the site's)
        "--appointment-status",
        "confirmed",
        "--red-flag",
        "fever",
        "--note",
        "son confirmed the ride",
    )
    assert called.exit_code == 0, called.output
    assert "call recorded (reached caregiver; appointment confirmed" in called.output
    noted = await run_cli(env, "note", tid, "prefers calls after 10", "--by", "rn.patel")
    assert noted.exit_code == 0, noted.output
    refused = await run_cli(env, "call", tid, "--by", "rn.patel", "--reached", "patient")
    assert refused.exit_code == 1 and "already completed" in refused.output

    async def shown() -> str:
        show = await run_cli(env, "show", tid)
        assert show.exit_code == 0, show.output
        assert "prefers calls after 10" in show.output  # the note's text, also in the timeline
        return show.output

    output = await assert_eventually(shown, within=30)
    assert "son confirmed the ride" in output
    assert "Fever of 38" in output  # the red flag by name
    assert f"appointment confirmed {appointment:%a %Y-%m-%d %H:%M}" in output
    state = await team.state(tid)
    visit = steps(state)["follow_up_visit"]
    assert datetime.fromisoformat(str(visit["appointment_at"])) == appointment
