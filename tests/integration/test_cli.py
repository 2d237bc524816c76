"""The CLI against the real stack: send with many files, list filters, show with timeline,
every step action, a refused action (one line, exit 1) and a report."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment

from schemas import keys
from tests.conftest import TEST_KEYS
from tests.helpers import a03, assert_eventually
from tests.integration.conftest import RunningStack, run_cli
from workers.runtime.settings import Settings


@pytest.fixture
def cli_env(
    stack: RunningStack, temporal_env: WorkflowEnvironment, database_url: str
) -> dict[str, str]:
    return {
        "CAREBRIDGE_DATABASE_URL": database_url,
        "CAREBRIDGE_TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "CAREBRIDGE_MLLP_PORT": str(stack.mllp_port),
        "CAREBRIDGE_LOG_LEVEL": "WARNING",
        "CAREBRIDGE_CODEC_KEYS": TEST_KEYS,
    }


async def test_cli_end_to_end(
    cli_env: dict[str, str], tmp_path: Path, settings: Settings, stack: RunningStack
) -> None:
    facility = f"CLI{uuid.uuid4().hex[:6].upper()}"
    discharged = datetime.now(UTC) - timedelta(hours=2)
    files = []
    for n in range(12):
        path = tmp_path / f"a03-{n}.hl7"
        path.write_bytes(a03(facility=facility, visit=f"V{n}", discharged=discharged))
        files.append(str(path))
    sent = await run_cli(cli_env, "send", *files)
    assert sent.exit_code == 0, sent.output
    assert sent.output.count(": AA ") == 12 and "AA: 12" in sent.output

    async def listed() -> list[dict[str, object]]:
        result = await run_cli(
            cli_env, "list", "--facility", facility, "--json", "--page-size", "20"
        )
        rows = [json.loads(line) for line in result.output.splitlines() if line.strip()]
        assert len(rows) == 12
        return rows

    await assert_eventually(listed, within=30)
    tid = keys.transition_id(
        keys.encounter_key(settings.key_secret.get_secret_value(), facility, "V0")
    )
    for args in (
        ("attempt", tid, "--by", "rn.a", "--result", "no_answer"),
        ("reassign", tid, "follow_up_visit", "--to", "rn.b", "--by", "sup.k"),
        ("note", tid, "prefers mornings", "--by", "rn.a"),
        ("complete", tid, "medication_reconciliation", "--by", "pharm.c"),
        ("cancel", tid, "follow_up_visit", "--by", "sup.k", "--reason", "seen at home"),
    ):
        done = await run_cli(cli_env, *args)
        assert done.exit_code == 0, (args, done.output)
    state = (await stack.http.get(f"/transitions/{tid}")).json()
    limit = next(s for s in state["steps"] if s["step_id"] == "interactive_contact")["limit_at"]
    late = (datetime.fromisoformat(limit) + timedelta(days=2)).isoformat()
    refused = await run_cli(
        cli_env,
        "snooze",
        tid,
        "interactive_contact",
        "--until",
        late,
        "--by",
        "rn.a",
        "--reason",
        "x",
    )
    assert refused.exit_code == 1
    assert "refused:" in refused.output and "past its deadline" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    blank = await run_cli(cli_env, "complete", tid, "interactive_contact", "--by", " ")
    assert blank.exit_code == 1 and "by: " in blank.output

    async def timeline_shown() -> None:
        shown = await run_cli(cli_env, "show", tid)
        assert shown.exit_code == 0, shown.output
        for expected in ("attempt", "reassigned", "note", "completed", "cancelled"):
            assert expected in shown.output

    await assert_eventually(timeline_shown)
    day = discharged.astimezone(ZoneInfo("America/New_York")).date().isoformat()  # site zone
    report = await run_cli(
        cli_env, "report", "tcm", "--from", day, "--to", day, "--facility", facility
    )
    assert report.exit_code == 0 and "tcm_applicable: 12" in report.output
    as_csv = await run_cli(
        cli_env,
        "report",
        "readmissions",
        "--from",
        day,
        "--to",
        day,
        "--facility",
        facility,
        "--csv",
    )
    assert as_csv.output.splitlines()[0].startswith("transition_id,facility,protocol")
    missing = await run_cli(cli_env, "show", "000000000000000000000000")
    assert missing.exit_code == 1 and "no transition" in missing.output


async def test_a_cli_action_retried_with_its_idempotency_key_is_recorded_once(
    cli_env: dict[str, str], settings: Settings, stack: RunningStack
) -> None:
    facility = f"CLK{uuid.uuid4().hex[:6].upper()}"
    response = await stack.post_adt(a03(facility=facility, visit="V1"))
    assert "|AA|" in response.text
    tid = keys.transition_id(
        keys.encounter_key(settings.key_secret.get_secret_value(), facility, "V1")
    )
    attempt = ("attempt", tid, "--by", "rn.a", "--result", "left_message")
    for _ in range(2):
        done = await run_cli(cli_env, *attempt, "--idempotency-key", "voicemail-0930")
        assert done.exit_code == 0, done.output

    async def one_attempt() -> None:
        state = (await stack.http.get(f"/transitions/{tid}")).json()
        [contact] = [s for s in state["steps"] if s["step_id"] == "interactive_contact"]
        assert [a["result"] for a in contact["attempts"]] == ["left_message"]

    await assert_eventually(one_attempt)
    bad = await run_cli(cli_env, *attempt, "--idempotency-key", "two words")
    assert bad.exit_code == 2 and "--idempotency-key" in bad.output


async def test_undelivered_lists_the_reason_and_redeliver_sends_at_most_once(
    cli_env: dict[str, str], stack: RunningStack
) -> None:
    pool = stack.services.pool
    tid = uuid.uuid4().hex[:24]
    now = datetime.now(UTC)
    notification_id = await pool.fetchval(
        "INSERT INTO notifications (transition_id, step_id, level, role, channel, due_at, "
        "scheduled_at, transport, failure) VALUES ($1, 'interactive_contact', 3, "
        "'medical_director', 'page', $2, $2, 'webhook', 'webhook answered 410') RETURNING id",
        tid,
        now - timedelta(hours=5),
    )
    listed = await run_cli(cli_env, "undelivered", "--limit", "500")
    assert listed.exit_code == 0, listed.output
    assert tid[:10] in listed.output and "webhook answered 410" in listed.output
    # No webhook is configured for this CLI: the retry says why and the row stays listed.
    still = await run_cli(cli_env, "redeliver", str(notification_id))
    assert still.exit_code == 1 and "still not delivered" in still.output
    assert "not configured" in still.output
    assert await pool.fetchval(
        "SELECT failure FROM notifications WHERE id = $1", notification_id
    ) == ("transport not configured (or no recipients for the role)")
    await pool.execute(
        "UPDATE notifications SET delivered_at = now() WHERE id = $1", notification_id
    )
    done = await run_cli(cli_env, "redeliver", str(notification_id))
    assert done.exit_code == 0 and "already delivered: not sent again" in done.output
    unknown = await run_cli(cli_env, "redeliver", "999999999")
    assert unknown.exit_code == 1 and "no notification 999999999" in unknown.output
