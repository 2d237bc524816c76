"""Every committed history still replays against today's TransitionWorkflow (determinism),
under the SDK's full sandbox (its runtime checks see every call our workflow modules make) and
under the runner the worker ships (workers.worker.workflow_runner: workflows/ passed through)."""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import workflows
from tests.workflow.support import patch_markers
from workers.runtime.temporal import DATA_CONVERTER
from workers.worker import workflow_runner
from workflows.transition import TransitionWorkflow

HISTORIES = sorted((Path(__file__).resolve().parent.parent / "histories").glob("*.json"))
HISTORY_JSON = {path: json.loads(path.read_text()) for path in HISTORIES}
# Every patch id a workflows module names (the transition's parts each keep their own).
PATCHES = {
    value
    for module in pkgutil.iter_modules(workflows.__path__, "workflows.")
    for name, value in vars(importlib.import_module(module.name)).items()
    if name.endswith("_PATCH")
}


def test_there_are_histories_to_replay() -> None:
    assert HISTORIES, "no committed histories under tests/histories"


RUNNERS: dict[str, WorkflowRunner] = {
    "full-sandbox": SandboxedWorkflowRunner(),
    "shipped": workflow_runner(),
}


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_without_nondeterminism(path: Path, runner: str) -> None:
    history = WorkflowHistory.from_json("transition-replay", HISTORY_JSON[path])
    replayer = Replayer(
        workflows=[TransitionWorkflow],
        data_converter=DATA_CONVERTER,
        workflow_runner=RUNNERS[runner],
    )
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None


def test_every_patch_of_the_workflow_is_taken_by_a_committed_history() -> None:
    """A patch no history takes is a code path no replay test guards."""
    taken = {marker for path in HISTORIES for marker in patch_markers(path)} & PATCHES
    assert PATCHES and taken == PATCHES, sorted(PATCHES - taken)
