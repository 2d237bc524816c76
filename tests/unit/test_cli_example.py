"""`carebridge example` prints a message `send -` and `plan` accept; `send -` reads stdin."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from ingest import er7, mapping
from schemas.adt import AdtEvent
from workers.cli.main import app
from workers.listener import END_BLOCK, frame

NY = ZoneInfo("America/New_York")
runner = CliRunner()


def example(*args: str) -> str:
    result = runner.invoke(app, ["example", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def event_of(text: str) -> AdtEvent:
    return mapping.to_event(er7.parse(text.encode()), NY)


@pytest.mark.parametrize(
    ("kind", "trigger", "disposition"),
    [
        ("a03", "A03", "01"),
        ("a03-home-health", "A03", "06"),
        ("a03-high-risk", "A03", "01"),
        ("a03-ama", "A03", "07"),
        ("a03-snf", "A03", "03"),
        ("a08", "A08", "01"),
        ("a13", "A13", ""),
    ],
)
def test_each_kind_prints_one_message_discharged_at_the_offset(
    kind: str, trigger: str, disposition: str
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    text = example(kind, "--discharged", "-3h", "--visit", "V1", "--separator", "cr")
    after = datetime.now(UTC)
    assert text.startswith("MSH|") and text.endswith("\r") and "\n" not in text
    event = event_of(text)
    assert (event.event_type, event.discharge_disposition) == (trigger, disposition)
    assert event.visit_number == "V1"
    assert event.admitted_at is not None
    if trigger != "A13":
        assert event.discharged_at is not None
        assert before - timedelta(hours=3) <= event.discharged_at <= after - timedelta(hours=3)


def test_options_reach_the_message() -> None:
    text = example("a03", "--facility", "STV", "--mrn", "M9", "--zone", "UTC", "--separator", "lf")
    assert "\r" not in text
    event = event_of(text)
    assert event.facility == "STV" and event.patient_identifiers[0].id == "M9"
    assert "+0000|" in text.splitlines()[0]


def test_times_are_written_in_the_site_zone_by_default() -> None:
    text = example("a03", "--discharged", "+0h")
    sent = text.split("|")[6]
    offset = datetime.now(NY).strftime("%z")
    assert sent.endswith(offset), sent


def test_off_a_terminal_the_separator_is_cr() -> None:
    assert "\n" not in example("a03")


@pytest.mark.parametrize(
    "args",
    [
        ["a99"],
        ["a03", "--discharged", "3h"],
        ["a03", "--zone", "Mars/Base"],
        ["a03", "--separator", "x"],
    ],
)
def test_bad_arguments_are_usage_errors(args: list[str]) -> None:
    result = runner.invoke(app, ["example", *args])
    assert result.exit_code == 2
    assert "Invalid value" in result.output


def test_an_update_without_a_visit_says_it_matches_nothing() -> None:
    result = runner.invoke(app, ["example", "a13"])
    assert result.exit_code == 0
    assert "no --visit" in result.stderr
    assert result.stdout.startswith("MSH|")


def test_the_high_risk_discharge_plans_as_lace_high(tmp_path: Path) -> None:
    path = tmp_path / "high-risk.hl7"
    path.write_text(example("a03-high-risk"))
    result = runner.invoke(app, ["plan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["protocol"] == "discharge-home"
    assert body["risk"]["tier"] == "high" and body["risk"]["lace"] >= 10
    assert "high_risk_check_in" in {s["step_id"] for s in body["plan"]["steps"]}


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A one-connection MLLP peer that answers every frame AA and keeps what it got."""
    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = server.accept()
        with connection:
            buffered = b""
            while chunk := connection.recv(65536):
                buffered += chunk
                while END_BLOCK in buffered:
                    message, buffered = buffered.split(END_BLOCK, 1)
                    received.append(message.lstrip(b"\x0b"))
                    control = message.split(b"|")[9].decode()
                    connection.sendall(frame(f"MSH|^~\\&|CB\rMSA|AA|{control}\r".encode()))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    server.close()
    thread.join(timeout=5)


def test_send_reads_messages_from_stdin(listener: tuple[int, list[bytes]]) -> None:
    port, received = listener
    piped = example("a03", "--visit", "V5") + example("a08", "--visit", "V5")
    result = runner.invoke(app, ["send", "-", "--port", str(port)], input=piped.encode())
    assert result.exit_code == 0, result.output
    assert result.output.count("stdin: AA ") == 2 and "AA: 2" in result.output
    assert [event_of(m.decode()).event_type for m in received] == ["A03", "A08"]
    assert b"".join(received) == piped.encode()


def test_send_refuses_a_missing_file_and_empty_stdin() -> None:
    missing = runner.invoke(app, ["send", "/nonexistent/a03.hl7", "--port", "9"])
    assert missing.exit_code == 2 and "not a file" in missing.output
    empty = runner.invoke(app, ["send", "-", "--port", "9"], input=b"\r\n")
    assert empty.exit_code == 1 and "no message on stdin" in empty.output
