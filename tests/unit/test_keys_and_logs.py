"""Opaque ids and the PHI safety net in logs."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from schemas import keys
from workers.runtime.logs import REDACTED, configure_logging, mask_phi


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


def test_phi_shaped_values_are_masked_wherever_they_are() -> None:
    """Issue 18 item 9: the net looked at key names only."""
    event = {
        "event": "adt.failed",
        "error": "cannot map PID|1||100234^^^GENHOSP^MR||DOE^JANE on 413-555-0142",
        "detail": "ssn 123-45-6789 and (617) 555 0199",
        "transition_id": "84eab8cbe530482a9f1d0a42",
        "at": "2026-12-01T14:56:03.910638Z",
        "count": 4135550142,
        "message_control_id": "2026120114",
    }
    masked = mask_phi(None, "error", dict(event))
    text = json.dumps(masked)
    for phi in ("DOE^JANE", "100234", "413-555-0142", "123-45-6789", "555 0199"):
        assert phi not in text, phi
    assert masked["transition_id"] == event["transition_id"]  # ids and times stay readable
    assert masked["at"] == event["at"] and masked["count"] == event["count"]
    assert masked["message_control_id"] == event["message_control_id"]


def test_a_traceback_is_masked_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    try:
        try:
            raise ValueError("bad value in NK1|1|QUIXOTE^ESMERALDA|DTR")
        except ValueError:
            structlog.get_logger("test").exception("adt.crashed")
    finally:
        logging.getLogger().handlers.clear()
    output = capsys.readouterr().err
    assert "adt.crashed" in output and "ValueError" in output
    assert "QUIXOTE" not in output
