"""A care manager's morning on the real stack: every due step shows (a step due on the day
although another step of the same transition is overdue), TCM work sorts above a handoff at
the same escalation level, care teams are the practice's (the roster's practice, the site's
PCP table) for the worklist, token teams and the daily digest, `assignee=me` is the caller
(API, CLI), and an escalation names the person on duty for its role in the facility's zone.

Every call sends an API token (no anonymous development access is relied on)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from schemas.protocol import DueRule, DueUnit, EscalationLevel, Protocol, StepRule, TcmElement
from schemas.transition import ReassignRequest
from store import care_teams, roster, security
from tests.conftest import TEST_KEYS
from tests.helpers import a03, assert_eventually, database_dsn, start_direct, transition_of
from tests.integration.conftest import (
    RunningStack,
    assert_projected,
    copy_protocols,
    run_cli,
    worker_with_channels,
)
from workers.runtime.settings import Settings
from workflows.digest import DigestWorkflow

RUN = uuid.uuid4().hex[:5].upper()
HONOLULU = ZoneInfo("Pacific/Honolulu")  # the test facilities' zone, not the site's
FACILITIES = {part: f"WL{RUN}{part}" for part in ("DUE", "SORT", "TEAM", "ME", "DUTY")}
RIVERSIDE, HILLTOP = f"riverside-{RUN}", f"hilltop-{RUN}"
PRACTICE, PCP = f"RIVER{RUN}", f"D{RUN}"
ON_DUTY, OFF_DUTY = "Dana Reyes", "Sam Off-Shift"
ON_DUTY_MAIL, OFF_DUTY_MAIL = "dana.reyes@example.test", "sam.off@example.test"
RIVERSIDE_MAIL = "riverside-team@example.test"


def hours(amount: int) -> DueRule:
    return DueRule(unit=DueUnit.HOURS, amount=amount)


def first_level(role: str, channel: str) -> tuple[EscalationLevel, ...]:
    return (EscalationLevel(level=1, role=role, channel=channel),)


# A review due an hour after the discharge (overdue at once) and the TCM contact 30 hours
# after it (due on a later day).
DUE_STEPS = Protocol(
    id="due-steps",
    version=1,
    title="an overdue review and a TCM contact due later",
    tcm=True,
    steps=(
        StepRule(id="medication_review", title="review", due=hours(1)),
        StepRule(
            id="interactive_contact",
            title="call",
            due=hours(30),
            tcm_element=TcmElement.INTERACTIVE_CONTACT,
        ),
    ),
)
TCM_OVERDUE = Protocol(
    id="tcm-overdue",
    version=1,
    title="TCM medication reconciliation, escalated at its deadline",
    tcm=True,
    steps=(
        StepRule(
            id="medication_reconciliation",
            title="reconcile",
            due=hours(1),
            tcm_element=TcmElement.MEDICATION_RECONCILIATION,
            escalation=first_level("care_manager", "worklist"),
        ),
    ),
)
HANDOFF_OVERDUE = Protocol(
    id="handoff-overdue",
    version=1,
    title="a facility handoff, escalated at its deadline",
    tcm=False,
    steps=(
        StepRule(
            id="discharge_summary_handoff",
            title="send the summary",
            due=hours(1),
            tcm_element=TcmElement.DISCHARGE_INFORMATION,
            escalation=first_level("care_manager", "worklist"),
        ),
    ),
)
SUPERVISOR_BY_EMAIL = Protocol(
    id="supervisor-by-email",
    version=1,
    title="a call escalated to the supervisor by e-mail at its deadline",
    tcm=False,
    steps=(
        StepRule(
            id="interactive_contact",
            title="call",
            due=hours(1),
            escalation=first_level("supervisor", "email"),
        ),
    ),
)


@pytest.fixture
def duty_instant() -> datetime:
    """When this test's escalation fires: half an hour ago, to the minute."""
    return (datetime.now(UTC) - timedelta(minutes=30)).replace(second=0, microsecond=0)


def shifts_around(instant: datetime) -> list[dict[str, Any]]:
    """Dana is on duty from an hour before the instant to an hour after, in Honolulu; Sam,
    listed first, the rest of the day: only a lookup in the facility's zone names Dana."""
    local = instant.astimezone(HONOLULU)
    before, after = (
        (local - timedelta(hours=1)).strftime("%H:%M"),
        (local + timedelta(hours=1)).strftime("%H:%M"),
    )
    return [
        {"name": OFF_DUTY, "email": OFF_DUTY_MAIL, "start": after, "end": before},
        {"name": ON_DUTY, "email": ON_DUTY_MAIL, "start": before, "end": after},
    ]


@pytest.fixture
def settings(settings: Settings, tmp_path: Path, duty_instant: datetime) -> Settings:
    """The shipped protocols with this module's facilities in Honolulu, the practice and PCP
    care teams, and the supervisors' on-call table."""

    def edit(site: dict[str, Any]) -> None:
        site["facilities"] = {code: {"timezone": HONOLULU.key} for code in FACILITIES.values()}
        site["care_teams"] = {"practices": {PRACTICE: RIVERSIDE}, "pcps": {PCP: HILLTOP}}
        site["notifications"]["on_call"] = {"supervisor": shifts_around(duty_instant)}
        site["notifications"]["recipients"] = {RIVERSIDE: [RIVERSIDE_MAIL]}

    protocols = copy_protocols(tmp_path, edit)
    return settings.model_copy(update={"protocols_dir": protocols})


class Tokens:
    """Bearer headers for this module's people."""

    def __init__(self, headers: dict[str, dict[str, str]]) -> None:
        self._headers = headers

    def __getitem__(self, subject: str) -> dict[str, str]:
        return self._headers[subject]


PEOPLE = {
    "feed": ("integration", None),
    "ops": ("operator", None),
    "nurse.me": ("care_manager", None),
    "nurse.other": ("care_manager", None),
    "sup.river": ("supervisor", RIVERSIDE),
}


@pytest_asyncio.fixture
async def tokens(stack: RunningStack) -> AsyncIterator[Tokens]:
    made = {}
    for subject, (role, team) in PEOPLE.items():
        _, token = await security.create_token(
            stack.services.pool, name=f"worklist {subject}", subject=subject, role=role, team=team
        )
        made[subject] = {"Authorization": f"Bearer {token}"}
    yield Tokens(made)


async def worklist(stack: RunningStack, tokens: Tokens, **params: str) -> list[dict[str, Any]]:
    response = await stack.http.get("/transitions", params=params, headers=tokens["ops"])
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()
    return rows


def buckets(row: dict[str, Any]) -> dict[str, str]:
    return {step["step_id"]: step["bucket"] for step in row["due_steps"]}


async def start(
    stack: RunningStack, settings: Settings, protocol: Protocol, facility: str, ago: timedelta
) -> str:
    tid = uuid.uuid4().hex[:24]
    await start_direct(
        stack.services.client,
        settings.task_queue,
        protocol,
        facility=facility,
        discharged_at=datetime.now(UTC) - ago,
        tid=tid,
    )
    return tid


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "CAREBRIDGE_DATABASE_URL": database_dsn(settings),
        "CAREBRIDGE_PROTOCOLS_DIR": str(settings.protocols_dir),
        "CAREBRIDGE_CODEC_KEYS": TEST_KEYS,
        "CAREBRIDGE_LOG_LEVEL": "WARNING",
    }


async def test_a_step_due_on_the_day_shows_although_another_step_is_overdue(
    stack: RunningStack, settings: Settings, tokens: Tokens
) -> None:
    facility = FACILITIES["DUE"]
    tid = await start(stack, settings, DUE_STEPS, facility, ago=timedelta(hours=2))

    async def planned() -> dict[str, Any]:
        rows = await worklist(stack, tokens, facility=facility)
        assert len(rows) == 1 and buckets(rows[0]).get("medication_review") == "overdue"
        return rows[0]

    row = await assert_eventually(planned)
    contact = next(s for s in row["due_steps"] if s["step_id"] == "interactive_contact")
    contact_day = datetime.fromisoformat(contact["due_at"]).astimezone(HONOLULU).date()

    [due] = await worklist(
        stack, tokens, facility=facility, due_today="true", due_on=contact_day.isoformat()
    )
    assert due["transition_id"] == tid
    assert buckets(due) == {"medication_review": "overdue", "interactive_contact": "due_today"}
    assert [s["step_id"] for s in due["due_steps"]] == ["medication_review", "interactive_contact"]
    assert next(s for s in due["due_steps"] if s["tcm"])["step_id"] == "interactive_contact"
    # the overdue step alone does not put the transition in a day's "due today"
    day_after = (contact_day + timedelta(days=1)).isoformat()
    assert (
        await worklist(stack, tokens, facility=facility, due_today="true", due_on=day_after) == []
    )
    [overdue] = await worklist(stack, tokens, facility=facility, overdue="true")
    assert overdue["transition_id"] == tid

    page = await stack.http.get(
        "/",
        params={"facility": facility, "view": "today", "day": contact_day.isoformat()},
        headers=tokens["ops"],
    )
    assert page.status_code == 200, page.text
    assert 'data-step="interactive_contact" data-bucket="due_today"' in page.text
    assert 'data-step="medication_review" data-bucket="overdue"' in page.text

    listed = await run_cli(
        cli_env(settings),
        "list",
        "--facility",
        facility,
        "--due-today",
        "--due-on",
        contact_day.isoformat(),
    )
    assert listed.exit_code == 0, listed.output
    assert "medication_review (overdue)" in listed.output
    assert "interactive_contact (today" in listed.output


async def test_tcm_work_sorts_above_a_handoff_at_the_same_escalation_level(
    stack: RunningStack, settings: Settings, tokens: Tokens
) -> None:
    facility = FACILITIES["SORT"]
    # the handoff was due an hour earlier: by due time alone it would come first
    handoff = await start(stack, settings, HANDOFF_OVERDUE, facility, ago=timedelta(hours=3))
    tcm = await start(stack, settings, TCM_OVERDUE, facility, ago=timedelta(hours=2))

    async def both_escalated() -> None:
        rows = await worklist(stack, tokens, facility=facility)
        assert len(rows) == 2 and {r["escalation_level"] for r in rows} == {1}

    await assert_eventually(both_escalated)
    rows = await worklist(stack, tokens, facility=facility, sort="escalation")
    assert [r["transition_id"] for r in rows] == [tcm, handoff]
    by_due = await worklist(stack, tokens, facility=facility, sort="next_due")
    assert [r["transition_id"] for r in by_due] == [handoff, tcm]

    page = await stack.http.get("/", params={"facility": facility}, headers=tokens["ops"])
    assert page.text.index(f'data-transition="{tcm}"') < page.text.index(
        f'data-transition="{handoff}"'
    )


async def discharged(stack: RunningStack, tokens: Tokens, facility: str, raw: bytes) -> None:
    response = await stack.http.post(
        "/adt",
        content=raw,
        headers={"Content-Type": "x-application/hl7-v2+er7", **tokens["feed"]},
    )
    assert "|AA|" in response.text, response.text


async def test_care_teams_are_the_practices_for_the_worklist_and_token_teams(
    stack: RunningStack, settings: Settings, tokens: Tokens
) -> None:
    facility = FACILITIES["TEAM"]
    secret = settings.key_secret.get_secret_value()
    on_roster = f"MRN{uuid.uuid4().hex[:8]}"
    await roster.upsert(
        stack.services.pool,
        [
            roster.RosterRecord(
                patient_key=keys.patient_key(secret, facility, on_roster),
                assigning_authority=facility,
                practice=PRACTICE,
            )
        ],
        source_file="teams.csv",
    )
    pcp_segment = f"PD1|||GENERAL PRACTICE|{PCP}^WELBY^MARCUS\r".encode()
    await discharged(stack, tokens, facility, a03(facility=facility, visit="R", mrn=on_roster))
    await discharged(stack, tokens, facility, a03(facility=facility, visit="P") + pcp_segment)
    await discharged(stack, tokens, facility, a03(facility=facility, visit="N", mrn="OTHER1"))
    river, hill, none = (transition_of(settings, facility, v) for v in ("R", "P", "N"))
    await assert_projected(stack.services.pool, facility, 3, within=60)

    rows = await worklist(stack, tokens, facility=facility)
    assert {r["transition_id"]: r["team"] for r in rows} == {
        river: RIVERSIDE,
        hill: HILLTOP,
        none: facility,  # neither a practice nor a listed PCP: the discharging facility
    }
    assert [r["transition_id"] for r in await worklist(stack, tokens, team=RIVERSIDE)] == [river]
    decided = await stack.services.pool.fetch(
        "SELECT transition_id, decided_by FROM care_teams WHERE transition_id = ANY($1::text[])",
        [river, hill, none],
    )
    assert {r["transition_id"]: r["decided_by"] for r in decided} == {
        river: "roster practice",
        hill: "pcp",
        none: "facility",
    }

    reassign = {"to": "nurse.me"}
    own = await stack.http.post(
        f"/transitions/{river}/steps/follow_up_visit/reassign",
        json=reassign,
        headers=tokens["sup.river"],
    )
    assert own.status_code == 200, own.text
    other = await stack.http.post(
        f"/transitions/{none}/steps/follow_up_visit/reassign",
        json=reassign,
        headers=tokens["sup.river"],
    )
    assert other.status_code == 403
    assert other.json()["detail"] == (f"the transition belongs to team {facility}, not {RIVERSIDE}")


async def test_assignee_me_is_the_caller_in_the_api_and_the_cli(
    stack: RunningStack, settings: Settings, tokens: Tokens
) -> None:
    facility = FACILITIES["ME"]
    await discharged(stack, tokens, facility, a03(facility=facility, visit="M"))
    tid = transition_of(settings, facility, "M")
    await assert_projected(stack.services.pool, facility, 1, within=60)
    handle = stack.services.client.get_workflow_handle(keys.workflow_id(tid))
    await handle.execute_update(
        "reassign",
        ReassignRequest(by="sup.test", step_id="interactive_contact", to="nurse.me"),
    )

    async def mine(subject: str) -> list[str]:
        response = await stack.http.get(
            "/transitions",
            params={"assignee": "me", "facility": facility},
            headers=tokens[subject],
        )
        assert response.status_code == 200, response.text
        return [r["transition_id"] for r in response.json()]

    async def assigned() -> None:
        assert await mine("nurse.me") == [tid]

    await assert_eventually(assigned)
    assert await mine("nurse.other") == []

    async def cli_mine(by: str) -> str:
        listed = await run_cli(
            cli_env(settings), "list", "--assignee", "me", "--by", by, "--facility", facility
        )
        assert listed.exit_code == 0, listed.output
        return listed.output

    assert tid in await cli_mine("nurse.me")
    assert tid not in await cli_mine("nurse.other")


async def test_an_escalation_names_the_person_on_duty_in_the_facilitys_zone(
    temporal_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    settings: Settings,
    duty_instant: datetime,
) -> None:
    facility = FACILITIES["DUTY"]
    async with worker_with_channels(
        temporal_env.client, pool, settings, settings.protocols_dir
    ) as (_, mailbox, _hooks):
        tid = uuid.uuid4().hex[:24]
        await start_direct(
            temporal_env.client,
            settings.task_queue,
            SUPERVISOR_BY_EMAIL,
            facility=facility,
            discharged_at=duty_instant - timedelta(hours=1),  # due, and escalated, at the instant
            tid=tid,
        )

        async def delivered() -> None:
            row = await pool.fetchrow(
                "SELECT on_duty, delivered_at FROM notifications WHERE transition_id = $1", tid
            )
            assert row is not None and row["delivered_at"] is not None
            assert row["on_duty"] == ON_DUTY

        await assert_eventually(delivered, within=30)
    mails = [m for m in mailbox.messages if tid in m.get_payload()]
    assert [m["To"] for m in mails] == [ON_DUTY_MAIL]
    assert f"to supervisor (on duty: {ON_DUTY})" in mails[0].get_payload()
    assert OFF_DUTY not in mails[0].get_payload()


async def test_the_daily_digest_goes_to_the_care_team_and_names_each_due_step(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    facility = FACILITIES["DUTY"]
    tid = uuid.uuid4().hex[:24]
    await care_teams.assign(pool, tid, RIVERSIDE, "roster practice")  # as the intake decides
    protocols = settings.protocols_dir
    async with worker_with_channels(temporal_env.client, pool, settings, protocols) as running:
        mailbox = running[1]
        await start_direct(
            temporal_env.client,
            settings.task_queue,
            DUE_STEPS,
            facility=facility,
            discharged_at=datetime.now(UTC) - timedelta(hours=2),
            tid=tid,
        )

        async def overdue() -> None:
            steps = await pool.fetchval(
                "SELECT overdue_steps FROM transitions WHERE transition_id = $1", tid
            )
            assert steps == ["medication_review"]

        await assert_eventually(overdue, within=30)
        await temporal_env.client.execute_workflow(
            DigestWorkflow.run, id=f"digest-{uuid.uuid4()}", task_queue=settings.task_queue
        )
    [digest] = [m for m in mailbox.messages if m["To"] == RIVERSIDE_MAIL]
    assert digest["Subject"].startswith(f"[carebridge] {RIVERSIDE}: 1 overdue")
    assert f"{tid}  medication_review  level 0" in digest.get_payload()
