"""A transition's owner on the real stack: a care manager claims it (once, however often the
claim is retried), a supervisor reassigns, "my patients" lists what I own with the overdue
first, the supervisor's team view counts each care manager's load; the same through the
CLI; refusals read as sentences; every change is audited."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from tests.helpers import assert_eventually
from tests.integration.care_support import Team, care_team, cli_env
from tests.integration.conftest import RunningStack, run_cli
from workers.runtime.settings import Settings


@pytest_asyncio.fixture
async def team(stack: RunningStack, settings: Settings) -> AsyncIterator[Team]:
    async with care_team(stack, settings) as found:
        yield found


async def test_claim_reassign_my_patients_and_the_team_view(team: Team) -> None:
    recent = await team.discharge()
    late = await team.discharge(days_ago=8)  # its contact is overdue (missed before arrival)
    claim = await team.http.post(
        f"/transitions/{recent}/claim", json={}, headers=team.as_("rn.alvarez")
    )
    assert claim.status_code == 200, claim.text
    assert claim.json()["owner"] == "rn.alvarez" and claim.json()["changed"] is True
    again = await team.http.post(
        f"/transitions/{recent}/claim", json={}, headers=team.as_("rn.alvarez")
    )
    assert again.status_code == 200 and again.json()["changed"] is False
    taken = await team.http.post(
        f"/transitions/{recent}/claim", json={}, headers=team.as_("rn.patel")
    )
    assert taken.status_code == 403
    assert taken.json()["detail"] == (
        "The transition belongs to rn.alvarez; ask a supervisor to reassign it."
    )
    handed = await team.http.post(
        f"/transitions/{late}/assign", json={"to": "rn.alvarez"}, headers=team.as_("rn.patel")
    )
    assert handed.status_code == 409
    assert handed.json()["detail"] == (
        "A care manager can claim a transition only for themselves; a supervisor assigns it to "
        "someone else."
    )
    assigned = await team.http.post(
        f"/transitions/{late}/assign", json={"to": "rn.alvarez"}, headers=team.as_("sup.kim")
    )
    assert assigned.status_code == 200 and assigned.json()["owner"] == "rn.alvarez"
    assert (await team.state(late))["owner"] == "rn.alvarez"

    async def mine() -> list[str]:
        listed = await team.http.get(
            "/transitions", params={"owner": "me"}, headers=team.as_("rn.alvarez")
        )
        rows = [row for row in listed.json() if row["facility"] == team.facility]
        assert [row["owner"] for row in rows] == ["rn.alvarez", "rn.alvarez"]
        return [row["transition_id"] for row in rows]

    assert await assert_eventually(mine) == [late, recent]  # the overdue one first
    theirs = await team.http.get(
        "/transitions", params={"owner": "me"}, headers=team.as_("rn.patel")
    )
    assert [r for r in theirs.json() if r["facility"] == team.facility] == []

    view = await team.http.get("/team", headers=team.as_("sup.kim"))
    assert view.status_code == 200, view.text
    load = {entry["owner"]: entry for entry in view.json()}["rn.alvarez"]
    assert (load["open"], load["overdue"]) == (2, 1)
    assert [row["transition_id"] for row in load["rows"]] == [late, recent]
    assert load["calls_due_today"] >= 1  # the overdue contact
    other_team = await team.http.get(
        "/team", params={"team": "ELSEWHERE"}, headers=team.as_("sup.kim")
    )
    assert other_team.status_code == 403

    kinds = [(e["kind"], e["actor"], e["detail"]) for e in await team.timeline(late)]
    assert ("assigned", "sup.kim", "to rn.alvarez") in kinds
    audit = await team.http.get(
        "/audit", params={"resource_id": recent}, headers=team.as_("auditor")
    )
    actions = {(r["actor"], r["action"], r["outcome"]) for r in audit.json()}
    assert ("rn.alvarez", "POST /transitions/{transition_id}/claim", "200") in actions
    assert ("rn.patel", "POST /transitions/{transition_id}/claim", "403") in actions


async def test_a_closed_transition_cannot_be_claimed(team: Team) -> None:
    tid = await team.discharge()
    await team.cancel(tid)

    async def refused() -> None:  # the workflow closes just after its state says cancelled
        claim = await team.http.post(
            f"/transitions/{tid}/claim", json={}, headers=team.as_("rn.alvarez")
        )
        assert claim.status_code == 409, claim.text
        assert claim.json()["detail"].startswith("The transition is ")

    await assert_eventually(refused)


async def test_claim_assign_and_my_patients_from_the_cli(
    team: Team, temporal_env: WorkflowEnvironment, database_url: str
) -> None:
    env = cli_env(temporal_env, database_url)
    tid = await team.discharge()
    claimed = await run_cli(env, "claim", tid, "--by", "rn.patel")
    assert claimed.exit_code == 0 and "rn.patel owns it" in claimed.output, claimed.output
    refused = await run_cli(env, "claim", tid, "--by", "rn.alvarez")
    assert refused.exit_code == 1
    assert "refused: The transition belongs to rn.patel; a supervisor can reassign it." in (
        refused.output
    )

    async def listed() -> list[dict[str, object]]:
        found = await run_cli(
            env, "list", "--mine", "--facility", team.facility, "--json", "--by", "rn.patel"
        )
        rows = [json.loads(line) for line in found.output.splitlines() if line.strip()]
        assert [row["transition_id"] for row in rows] == [tid]
        return rows

    await assert_eventually(listed, within=30)
    moved = await run_cli(env, "assign", tid, "--to", "rn.alvarez", "--by", "sup.kim")
    assert moved.exit_code == 0, moved.output

    async def shown() -> None:
        team_view = await run_cli(env, "team", "--team", team.facility)
        assert team_view.exit_code == 0, team_view.output
        assert "rn.alvarez" in team_view.output and tid in team_view.output

    await assert_eventually(shown, within=30)
    show = await run_cli(env, "show", tid)
    assert "owner rn.alvarez since" in show.output, show.output
