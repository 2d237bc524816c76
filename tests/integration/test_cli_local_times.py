"""The CLI's small ones on the real stack: `snooze --until` with a local time and no offset
moves the due time to that time in the transition's zone, a time the clocks skip is refused
in one sentence before anything is sent, and a workflow's refusal reads as a sentence (no
`ValueError:`)."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from tests.integration.conftest import RunningStack, run_cli
from tests.integration.test_cli import cli_env
from tests.integration.test_printable_plan import Tokens, discharged, spanish_speaker, tokens
from tests.unit.test_refusal_sentences import next_spring_forward

__all__ = ["cli_env", "tokens"]
NY = ZoneInfo("America/New_York")  # the site zone: the test facility has no entry of its own


async def step_of(stack: RunningStack, tokens: Tokens, tid: str, step_id: str) -> dict[str, str]:
    state = await stack.http.get(f"/transitions/{tid}", headers=tokens.care_manager)
    return dict(next(s for s in state.json()["steps"] if s["step_id"] == step_id))


async def test_snooze_until_a_local_time_is_read_in_the_transitions_zone(
    stack: RunningStack, tokens: Tokens, cli_env: dict[str, str]
) -> None:
    facility = f"LT{uuid.uuid4().hex[:4].upper()}"
    tid = await discharged(stack, tokens, spanish_speaker(facility), facility)
    step = await step_of(stack, tokens, tid, "medication_reconciliation")
    later = datetime.fromisoformat(step["due_at"]).astimezone(NY).date() + timedelta(days=2)
    snoozed = await run_cli(
        cli_env,
        "snooze",
        tid,
        "medication_reconciliation",
        "--until",
        f"{later.isoformat()}T10:30",
        "--by",
        "rn.a",
        "--reason",
        "pharmacy closed",
    )
    assert snoozed.exit_code == 0, snoozed.output
    moved = await step_of(stack, tokens, tid, "medication_reconciliation")
    assert datetime.fromisoformat(moved["due_at"]) == datetime.combine(
        later, time(10, 30), tzinfo=NY
    )

    gap = next_spring_forward(NY)
    skipped = await run_cli(
        cli_env,
        "snooze",
        tid,
        "medication_reconciliation",
        "--until",
        f"{gap.isoformat()}T02:30",
        "--by",
        "rn.a",
        "--reason",
        "x",
    )
    assert skipped.exit_code == 1
    assert f"{gap.isoformat()} 02:30 does not exist in America/New_York" in skipped.output
    assert len(skipped.output.strip().splitlines()) == 1


async def test_a_refused_action_reads_as_a_sentence(
    stack: RunningStack, tokens: Tokens, cli_env: dict[str, str]
) -> None:
    facility = f"LR{uuid.uuid4().hex[:4].upper()}"
    tid = await discharged(stack, tokens, spanish_speaker(facility), facility)
    args = ("complete", tid, "follow_up_visit", "--by", "rn.a")
    assert (await run_cli(cli_env, *args)).exit_code == 0
    again = await run_cli(cli_env, *args)
    assert again.exit_code == 1
    assert "refused: Step 'follow_up_visit' is already completed." in again.output
    assert "ValueError" not in again.output
    shown = await run_cli(cli_env, "show", tid)
    assert shown.exit_code == 0, shown.output
    assert "diagnoses: Heart failure, unspecified (I50.9)" in shown.output
    assert "language: Spanish" in shown.output and "JOHN DOE (spouse)" in shown.output
