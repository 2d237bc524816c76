"""`carebridge plan` and `carebridge protocols`: the schedule without starting anything."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.helpers import FIXTURES
from workers.cli import app

runner = CliRunner()


def test_plan_json_for_the_friday_example() -> None:
    result = runner.invoke(app, ["plan", str(FIXTURES / "adt_a03.hl7"), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["protocol"] == "discharge-home"
    assert body["risk"]["tier"] == "standard"
    due = {s["step_id"]: s["due_at"] for s in body["plan"]["steps"]}
    assert due["interactive_contact"] == "2026-11-24T23:59:59-05:00"
    assert "high_risk_check_in" not in due


def test_plan_table_for_the_high_risk_example() -> None:
    result = runner.invoke(app, ["plan", str(FIXTURES / "adt_a03_high_risk.hl7")])
    assert result.exit_code == 0, result.output
    assert "risk high: LACE 13 = L5 A3 C5 E0" in result.output
    assert "high_risk_check_in" in result.output
    assert "Mon 2026-11-30 23:59" in result.output  # 7-day visit
    assert "Fri 2026-11-27 12:00" in result.output  # +4 business hours skips Thanksgiving


def test_plan_refuses_a_message_that_is_not_a_discharge() -> None:
    result = runner.invoke(app, ["plan", str(FIXTURES / "adt_a08.hl7")])
    assert result.exit_code == 1
    assert "not a discharge" in result.output


def test_protocols_lists_every_protocol_and_the_selection_table() -> None:
    result = runner.invoke(app, ["protocols"])
    assert result.exit_code == 0, result.output
    for protocol in ("discharge-home", "discharge-home-health", "left-ama", "expired"):
        assert protocol in result.output
    assert "deceased (PID-29/30)" in result.output
