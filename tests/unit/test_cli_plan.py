"""`carebridge plan` and `carebridge protocols`: the schedule without starting anything."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from tests.helpers import FIXTURES, a03
from workers.cli.main import app
from workers.runtime.settings import get_settings

SHIPPED = Path(__file__).resolve().parents[2] / "protocols"

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


def plan_json(path: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["plan", str(path), "--json"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.output)
    return body


def test_plan_notes_an_unlisted_facility_planned_in_the_site_zone(tmp_path: Path) -> None:
    path = tmp_path / "a03.hl7"
    path.write_bytes(a03(facility="NOWHERE"))
    body = plan_json(path)
    assert body["plan"]["timezone"] == "America/New_York"
    assert any("NOWHERE has no entry under facilities" in note for note in body["notes"])


def test_plan_uses_a_listed_facility_zone_and_calendar(tmp_path: Path) -> None:
    protocols = tmp_path / "protocols"
    shutil.copytree(SHIPPED, protocols)
    site = yaml.safe_load((protocols / "site.yaml").read_text())
    site["facilities"] = {"QUEENS": {"timezone": "Pacific/Honolulu"}}
    (protocols / "site.yaml").write_text(yaml.safe_dump(site))
    # Thursday 23:30 in Honolulu, written without an offset: read in the facility's zone.
    path = tmp_path / "a03.hl7"
    path.write_bytes(a03(facility="QUEENS", discharged="20270107233000"))
    body = plan_json(path, {"CAREBRIDGE_PROTOCOLS_DIR": str(protocols)})
    assert body["discharged_at"] == "2027-01-07T23:30:00-10:00"
    assert body["plan"]["timezone"] == "Pacific/Honolulu"
    due = {s["step_id"]: s["due_at"] for s in body["plan"]["steps"]}
    assert due["interactive_contact"] == "2027-01-11T23:59:59-10:00"  # Monday, not Tuesday
    assert not any("has no entry under facilities" in note for note in body["notes"])
