"""The worker's sandbox runner answers the payload visitor's context questions from the SDK's
in-sandbox object, not by re-entering the sandbox, and with the same answers."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.converter import WorkflowSerializationContext
from temporalio.worker import Replayer, WorkflowInstance, WorkflowInstanceDetails

from workers.runtime.sandbox_runner import DirectContextInstance, DirectContextSandboxRunner
from workers.runtime.temporal import DATA_CONVERTER
from workers.worker import WORKFLOW_RESTRICTIONS
from workflows.transition import TransitionWorkflow

HISTORY = sorted((Path(__file__).resolve().parents[1] / "histories").glob("care.*.json"))[-1]


class RecordingRunner(DirectContextSandboxRunner):
    def __init__(self) -> None:
        super().__init__(WORKFLOW_RESTRICTIONS)
        self.instances: list[DirectContextInstance] = []

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        instance = super().create_instance(det)
        assert isinstance(instance, DirectContextInstance)
        self.instances.append(instance)
        return instance


async def test_contexts_come_from_the_in_sandbox_object_and_match_the_sdks() -> None:
    runner = RecordingRunner()
    replayer = Replayer(
        workflows=[TransitionWorkflow], data_converter=DATA_CONVERTER, workflow_runner=runner
    )
    history = WorkflowHistory.from_json("transition-direct-context", HISTORY.read_text())
    assert (await replayer.replay_workflow(history)).replay_failure is None
    instance = runner.instances[-1]
    # the shortcut was found: not the sandboxed instance's own (exec-in-sandbox) method
    assert instance._direct is not instance._sandboxed
    direct = instance.get_serialization_context(None)
    through_sandbox = instance._sandboxed.get_serialization_context(None)
    assert direct == through_sandbox
    assert isinstance(direct, WorkflowSerializationContext)
    assert direct.workflow_id == "transition-direct-context"
    assert instance.get_external_store_context(None) == (
        instance._sandboxed.get_external_store_context(None)
    )
