"""The worker passes workflows/ through the sandbox (workers.worker.workflow_runner), so the
sandbox no longer sees the clock, randomness or I/O our workflow modules reach for: ruff's
workflows/ruff.toml refuses them instead. This proves it does, on probes written there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"


def lint_as_workflow_code(source: str) -> str:
    """ruff's findings on `source` as if it were a module under workflows/."""
    done = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--stdin-filename", "workflows/probe.py", "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return done.stdout


@pytest.mark.parametrize(
    ("source", "refusal"),
    [
        ("from datetime import datetime\n\nx = datetime.now()\n", "datetime.datetime.now"),
        ("import datetime\n\nx = datetime.date.today()\n", "datetime.date.today"),
        ("import time\n\nx = time.time()\n", "`time` is banned"),
        ("import random\n\nx = random.random()\n", "`random` is banned"),
        ("import uuid\n\nx = uuid.uuid4()\n", "uuid.uuid4"),
        ("import os\n\nx = os.environ\n", "`os` is banned"),
        ("from pathlib import Path\n\nx = Path('f')\n", "`pathlib` is banned"),
        ('print("x")\n', "T201"),
    ],
)
def test_workflow_code_may_not_reach_for_the_clock_randomness_or_io(
    source: str, refusal: str
) -> None:
    assert refusal in lint_as_workflow_code(source)


def test_what_workflows_may_use_passes() -> None:
    source = (
        "from datetime import timedelta\n\nfrom temporalio import workflow\n\n\n"
        "def later() -> object:\n    return workflow.now() + timedelta(days=1)\n"
    )
    assert lint_as_workflow_code(source).strip() == "All checks passed!"


def test_the_same_code_outside_workflows_is_not_refused() -> None:
    done = subprocess.run(
        [str(RUFF), "check", "--no-cache", "--stdin-filename", "activities/probe.py", "-"],
        input="import random\n\nx = random.random()\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout
