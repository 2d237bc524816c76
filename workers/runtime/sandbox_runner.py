"""The SDK's workflow sandbox, minus one cost that buys no safety.

Temporal's payload visitor asks the workflow instance for a serialization context for every
payload sequence it encodes or decodes (several a workflow task). The sandboxed instance answers
by compiling and `exec`-ing a two-line code string inside the sandbox with its import hooks
applied: about a fifth of a busy worker's CPU (py-spy on `python -m bench.sandbox`). The
answer comes from the SDK's own instance object (a lookup of the pending command by sequence
number, no workflow code runs), so this runner asks that object directly. Everything the
workflow code runs (activations) still goes through the sandbox unchanged.

The in-sandbox object is a private detail of temporalio (pinned in pyproject.toml): when it is
not where this module expects, the instance falls back to the SDK's own (slower) path, and
`tests/unit/test_sandbox_runner.py` fails so the pin cannot move past it silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import temporalio.bridge.proto.workflow_activation as activation
import temporalio.bridge.proto.workflow_completion as completion
import temporalio.converter
import temporalio.workflow
from temporalio.converter import StorageDriverStoreContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker._command_aware_visitor import CommandInfo
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

_IN_SANDBOX = "__temporal_in_sandbox"  # temporalio.worker.workflow_sandbox._runner._Instance


def in_sandbox_object(instance: WorkflowInstance) -> Any | None:
    """The SDK's object inside a sandboxed instance that answers context questions, or None."""
    namespace = getattr(instance, "globals_and_locals", None)
    return namespace.get(_IN_SANDBOX) if isinstance(namespace, dict) else None


class DirectContextInstance(WorkflowInstance):
    """A sandboxed instance whose serialization and store contexts are read without entering
    the sandbox."""

    def __init__(self, sandboxed: WorkflowInstance) -> None:
        self._sandboxed = sandboxed
        self._direct = in_sandbox_object(sandboxed) or sandboxed

    def activate(
        self, act: activation.WorkflowActivation
    ) -> completion.WorkflowActivationCompletion:
        return self._sandboxed.activate(act)

    def get_serialization_context(
        self, command_info: CommandInfo | None
    ) -> temporalio.converter.SerializationContext | None:
        context: temporalio.converter.SerializationContext | None = (
            self._direct.get_serialization_context(command_info)
        )
        return context

    def get_external_store_context(
        self, command_info: CommandInfo | None
    ) -> StorageDriverStoreContext:
        context: StorageDriverStoreContext = self._direct.get_external_store_context(command_info)
        return context

    def get_info(self) -> temporalio.workflow.Info:
        return self._sandboxed.get_info()

    def get_thread_id(self) -> int | None:
        return self._sandboxed.get_thread_id()


class DirectContextSandboxRunner(WorkflowRunner):
    """SandboxedWorkflowRunner(restrictions), its instances wrapped in DirectContextInstance."""

    def __init__(self, restrictions: SandboxRestrictions) -> None:
        self._sandbox = SandboxedWorkflowRunner(restrictions=restrictions)

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        self._sandbox.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return DirectContextInstance(self._sandbox.create_instance(det))

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self._sandbox.set_worker_level_failure_exception_types(types)
