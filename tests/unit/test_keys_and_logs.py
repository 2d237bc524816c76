"""Opaque ids and the PHI safety net in logs."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from ingest import keys
from workers.logs import REDACTED, configure_logging, mask_phi


def test_encounter_key_is_deterministic_and_reveals_no_visit_number() -> None:
    first = keys.encounter_key("s3cret", "GENHOSP", "V0000123")
    assert first == keys.encounter_key("s3cret", "genhosp ", " V0000123")
    assert "V0000123" not in first and "GENHOSP" not in first
    assert first != keys.encounter_key("s3cret", "GENHOSP", "V0000124")
    assert first != keys.encounter_key("other", "GENHOSP", "V0000123")
    tid = keys.transition_id(first)
    assert len(tid) == keys.TRANSITION_ID_LENGTH
    assert keys.workflow_id(tid) == f"transition-{tid}"


def test_mask_phi_redacts_known_phi_fields() -> None:
    event = {"event": "x", "mrn": "100234", "Phone": "555", "transition_id": "abc"}
    assert mask_phi(None, "info", event) == {
        "event": "x",
        "mrn": REDACTED,
        "Phone": REDACTED,
        "transition_id": "abc",
    }


def test_json_log_lines_carry_bound_context_and_no_phi(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    structlog.contextvars.bind_contextvars(message_control_id="CTRL9")
    try:
        structlog.get_logger("test").info("adt.accepted", transition_id="t1", mrn="100234")
    finally:
        structlog.contextvars.clear_contextvars()
        logging.getLogger().handlers.clear()
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["event"] == "adt.accepted"
    assert line["message_control_id"] == "CTRL9"
    assert line["transition_id"] == "t1"
    assert line["mrn"] == REDACTED
    assert "100234" not in json.dumps(line)
