"""`carebridge up` as a user runs it: embedded Temporal and PostgreSQL, a sign-in URL and a
token file printed, a discharge from `carebridge example` over HTTP with that token (none:
401), `carebridge list`/`show`, a second stack refused, clean stop, state reused."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.business_calendar import BusinessCalendar
from ingest import er7, example_messages, mapping
from schemas import keys
from schemas.protocol import DueUnit
from schemas.protocol_library import load_library
from tests.conftest import TEST_KEYS
from tests.helpers import a03, find_free_port, msa
from workers.runtime.embedded import find_binary
from workers.runtime.settings import DEV_KEY_SECRET

STARTUP_SECONDS = 120
NY = ZoneInfo("America/New_York")
PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"
ER7 = {"Content-Type": "x-application/hl7-v2+er7"}


class Stack:
    """One `carebridge up` child process with its output collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [find_binary("carebridge"), "up"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, seconds: float = STARTUP_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not printed; output:\n{''.join(self.output)}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}
    env.update(
        CAREBRIDGE_STATE_DIR=str(tmp_path / "state"),
        CAREBRIDGE_TEMPORAL_PORT=str(find_free_port()),
        CAREBRIDGE_TEMPORAL_UI_PORT=str(find_free_port()),
        CAREBRIDGE_API_PORT=str(find_free_port()),
        CAREBRIDGE_MLLP_PORT=str(find_free_port()),
        CAREBRIDGE_LOG_FORMAT="json",
    )
    yield env


def dev_token(env: dict[str, str]) -> dict[str, str]:
    """The Authorization header of the token `up` wrote, as the README's curl line sends it."""
    token = (Path(env["CAREBRIDGE_STATE_DIR"]) / "dev-token").read_text().strip()
    return {"Authorization": f"Bearer {token}"}


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_binary("carebridge"), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_up_serves_the_example_discharge_and_stops_cleanly(stack_env: dict[str, str]) -> None:
    api = f"http://127.0.0.1:{stack_env['CAREBRIDGE_API_PORT']}"
    visit = example_messages.fresh_visit()
    generated = cli(stack_env, "example", "a03", "--visit", visit)
    assert generated.returncode == 0, generated.stderr
    raw = generated.stdout.encode()
    event = mapping.to_event(er7.parse(raw), NY)
    assert event.discharged_at is not None
    calendar = BusinessCalendar(load_library(PROTOCOLS).site.calendar)
    contact_due = calendar.offset(event.discharged_at, DueUnit.BUSINESS_DAYS, 2)
    tid = keys.transition_id(keys.encounter_key(DEV_KEY_SECRET, "GENHOSP", visit))

    first = Stack(stack_env)
    try:
        first.wait_for("Ctrl-C stops")
        banner = "".join(first.output)
        assert f"{api}/login?code=" in banner and "$(cat " in banner
        anonymous = httpx.post(f"{api}/adt", content=raw, headers=ER7, timeout=30)
        assert anonymous.status_code == 401  # development too
        response = httpx.post(
            f"{api}/adt", content=raw, headers={**ER7, **dev_token(stack_env)}, timeout=30
        )
        assert msa(response.text)[1:3] == ["AA", event.header.control_id]

        deadline = time.monotonic() + 30
        listed = cli(stack_env, "list")
        while tid not in listed.stdout and time.monotonic() < deadline:
            time.sleep(0.5)
            listed = cli(stack_env, "list")
        assert tid in listed.stdout, listed.stdout + listed.stderr
        assert "interactive_contact" in listed.stdout

        shown = cli(stack_env, "show", tid)
        assert shown.returncode == 0, shown.stderr
        assert "medication_reconciliation" in shown.stdout
        assert f"{contact_due:%a %Y-%m-%d %H:%M}" in shown.stdout  # 2nd business day

        second = cli(stack_env, "up")
        assert second.returncode == 1
        assert "already in use" in second.stderr
        assert "another carebridge stack" in second.stderr
    finally:
        code = first.stop()
    first.wait_for("stopped.", seconds=5)
    assert code == 0

    token = dev_token(stack_env)
    again = Stack(stack_env)
    try:
        again.wait_for("Ctrl-C stops")
        listed = cli(stack_env, "list", "--json")
        assert tid in listed.stdout, "state under CAREBRIDGE_STATE_DIR was not reused"
        assert dev_token(stack_env) == token  # still valid: reused, not replaced
    finally:
        assert again.stop() == 0


def test_up_uses_the_configured_temporal_and_database_instead_of_its_own(
    stack_env: dict[str, str], temporal_env: WorkflowEnvironment, database_url: str
) -> None:
    target = temporal_env.client.service_client.config.target_host
    stack_env.update(
        CAREBRIDGE_TEMPORAL_ADDRESS=target,
        CAREBRIDGE_DATABASE_URL=database_url,
        CAREBRIDGE_CODEC_KEYS=TEST_KEYS,
        CAREBRIDGE_TASK_QUEUE=f"tq-{uuid.uuid4()}",
    )
    stack = Stack(stack_env)
    try:
        stack.wait_for("Ctrl-C stops")
        banner = "".join(stack.output)
        assert f"external Temporal at {target}" in banner
        assert "external (CAREBRIDGE_DATABASE_URL)" in banner
        response = httpx.post(
            f"http://127.0.0.1:{stack_env['CAREBRIDGE_API_PORT']}/adt",
            content=a03(control_id="EXTERNAL-1"),
            headers={"Content-Type": "text/plain", **dev_token(stack_env)},
            timeout=30,
        )
        assert msa(response.text)[1:3] == ["AA", "EXTERNAL-1"]
    finally:
        assert stack.stop() == 0
    state = Path(stack_env["CAREBRIDGE_STATE_DIR"])
    assert not (state / "temporal.db").exists()
    assert not (state / "pgdata").exists()
