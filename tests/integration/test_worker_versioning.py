"""Worker Versioning on a dev server of the test's own (deploy/README.md, "Upgrading
workers"): a transition of the last unversioned release moves to build A when A is promoted;
transitions start on A while build B already polls, `carebridge deployment promote B` makes B
current, and every transition then finishes on B, both while A still polls (a rolling
deploy) and once A is retired, with no workflow task failed or timed out (no
non-determinism) on the way."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import TypeVar

import asyncpg
import pytest
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType, VersioningBehavior
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import VersioningBehavior as CommonVersioningBehavior
from temporalio.common import WorkerDeploymentVersion
from temporalio.worker import Worker

from schemas import keys
from schemas.transition import (
    AttemptRequest,
    AttemptResult,
    CompleteStepRequest,
    TransitionState,
    TransitionStatus,
)
from tests.conftest import TEST_KEYS
from tests.helpers import a03, assert_eventually, with_event
from tests.integration.conftest import run_cli, start_server, stop_server
from workers.runtime.services import Services
from workers.runtime.settings import Settings
from workers.worker import build_worker, deployment_config
from workflows.transition import TransitionWorkflow

T = TypeVar("T")
Handle = WorkflowHandle[TransitionWorkflow, TransitionState]
STEP = "interactive_contact"
NOT_PLAYED = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,  # a non-determinism error among others
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,  # e.g. left on a retired build's queue
}


def deceased(raw: bytes) -> bytes:
    """The message with PID-30 (patient death indicator) = Y."""
    segments = raw.decode().split("\r")
    for n, segment in enumerate(segments):
        if segment.startswith("PID|"):
            fields = segment.split("|")
            fields += [""] * (31 - len(fields))
            fields[30] = "Y"
            segments[n] = "|".join(fields)
    return "\r".join(segments).encode()


def started(worker: Worker) -> asyncio.Task[None]:
    return asyncio.create_task(worker.run())


async def retire(worker: Worker, running: asyncio.Task[None]) -> None:
    await worker.shutdown()
    await running


async def completed_by(handle: Handle) -> list[tuple[int, str, str, int]]:
    """(event id, deployment, build id, versioning behaviour) of every completed workflow
    task; asserts that no workflow task failed or timed out."""
    history = await handle.fetch_history()
    unplayed = [event for event in history.events if event.event_type in NOT_PLAYED]
    assert not unplayed, f"{handle.id}: {unplayed}"
    return [
        (
            event.event_id,
            attributes.deployment_version.deployment_name,
            attributes.deployment_version.build_id,
            attributes.versioning_behavior,
        )
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        for attributes in [event.workflow_task_completed_event_attributes]
    ]


def within(seconds: float, awaitable: Awaitable[T]) -> Awaitable[T]:
    """An update or a result that never comes fails the test (a task left for a build
    that no longer polls would wait forever)."""
    return asyncio.wait_for(awaitable, seconds)


async def settled_at(handle: Handle) -> int:
    """The last event id once no workflow task is pending (the local activities an Update
    set off have finished): every task up to here is done by the builds polling now."""

    async def settled() -> int:
        described = await handle.describe()
        assert not described.raw_description.HasField("pending_workflow_task")
        return (await handle.fetch_history()).events[-1].event_id

    return await assert_eventually(settled, within=30)


async def test_transitions_started_on_build_a_finish_on_build_b_once_b_is_promoted(
    own_temporal: Settings, pool: asyncpg.Pool
) -> None:
    base = own_temporal.model_copy(update={"worker_build_id": None})  # unversioned
    deployment = base.worker_deployment_name
    build_a = base.model_copy(update={"worker_build_id": "A"})
    build_b = base.model_copy(update={"worker_build_id": "B"})
    cli_env = {
        "CAREBRIDGE_TEMPORAL_ADDRESS": base.temporal_target,
        "CAREBRIDGE_TASK_QUEUE": base.task_queue,
        "CAREBRIDGE_WORKER_DEPLOYMENT_NAME": deployment,
        "CAREBRIDGE_CODEC_KEYS": TEST_KEYS,
        "CAREBRIDGE_STATE_DIR": str(base.state_dir),
        "CAREBRIDGE_LOG_LEVEL": "WARNING",
    }
    process, client = await start_server(base)
    workers: list[tuple[Worker, asyncio.Task[None]]] = []
    try:
        services = Services.build(base, pool, client)
        secret = base.key_secret.get_secret_value()
        facility = f"VER{uuid.uuid4().hex[:6].upper()}"
        visits = [f"V-VER-{n}" for n in range(5)]
        handles: list[Handle] = []

        async def discharge(visit: str) -> None:
            result = await services.intake.handle(a03(facility=facility, visit=visit))
            assert result.code == "AA", result.ack
            tid = keys.transition_id(keys.encounter_key(secret, facility, visit))
            handles.append(
                client.get_workflow_handle_for(TransitionWorkflow.run, keys.workflow_id(tid))
            )

        async def attempt(handle: Handle, by: str, result: AttemptResult) -> None:
            request = AttemptRequest(step_id=STEP, by=by, result=result)
            await within(30, handle.execute_update(TransitionWorkflow.record_attempt, request))

        # Before versioning: the last unversioned release runs transition 4.
        unversioned = build_worker(client, pool, base)
        workers.append((unversioned, started(unversioned)))
        await discharge(visits[4])
        await attempt(handles[0], "rn.u", AttemptResult.NO_ANSWER)
        before_a = [await settled_at(handles[0])]

        # The first versioned release, build A, is deployed and made current; the unversioned
        # workers are retired. A build nobody runs cannot be made current (one line, exit 1).
        worker_a = build_worker(client, pool, build_a)
        workers.append((worker_a, started(worker_a)))
        promoted = await run_cli(cli_env, "deployment", "promote", "A", "--wait", "60")
        assert promoted.exit_code == 0, promoted.output
        assert "build A is now current" in promoted.output
        assert "(was unversioned workers)" in promoted.output
        missing = await run_cli(cli_env, "deployment", "promote", "C")
        assert missing.exit_code == 1
        assert "no worker of build 'C' is polling task queue" in missing.output
        assert "CAREBRIDGE_WORKER_BUILD_ID=C" in missing.output
        await retire(*workers.pop(0))

        # Transitions 0-3 start on A. Build B rolls out next to A: it polls, but gets nothing
        # while A is current.
        for visit in visits[:4]:
            await discharge(visit)
        handles = [*handles[1:], handles[0]]  # in visit order: transition n is handles[n]
        worker_b = build_worker(client, pool, build_b)
        workers.append((worker_b, started(worker_b)))
        for handle in handles:
            await attempt(handle, "rn.a", AttemptResult.NO_ANSWER)
        shown = await run_cli(cli_env, "deployment", "status")
        assert shown.exit_code == 0, shown.output
        assert f"deployment {deployment!r}: current A" in shown.output
        before_b = [await settled_at(handle) for handle in handles]

        promoted = await run_cli(cli_env, "deployment", "promote", "B", "--wait", "60")
        assert promoted.exit_code == 0, promoted.output
        assert "build B is now current" in promoted.output and "(was A)" in promoted.output
        again = await run_cli(cli_env, "deployment", "promote", "B")
        assert again.exit_code == 0 and "build B is already current" in again.output, again

        # A still polls (the rolling deploy has not retired it yet): the work goes to B.
        await within(
            30,
            handles[0].execute_update(
                TransitionWorkflow.complete_step,
                CompleteStepRequest(step_id=STEP, by="rn.b", outcome="reached on the 2nd call"),
            ),
        )
        death = deceased(with_event(a03(facility=facility, visit=visits[1]), "A08"))
        assert (await services.intake.handle(death)).code == "AA"

        # A is retired; B alone finishes the rest.
        await retire(*workers.pop(0))
        await attempt(handles[2], "rn.b", AttemptResult.LEFT_MESSAGE)
        for visit in (visits[0], visits[2], visits[4]):
            cancel = with_event(a03(facility=facility, visit=visit), "A13")
            assert (await services.intake.handle(cancel)).code == "AA"
        death = deceased(with_event(a03(facility=facility, visit=visits[3]), "A08"))
        assert (await services.intake.handle(death)).code == "AA"

        cancelled = (TransitionStatus.CANCELLED, "discharge cancelled (A13)")
        died = (TransitionStatus.DECEASED, "patient died (A08)")
        expected = [cancelled, died, cancelled, died, cancelled]
        for handle, (status, reason) in zip(handles, expected, strict=True):
            final = await within(60, handle.result())
            assert final.status == status, handle.id
            assert final.outcome is not None
            assert (final.outcome.status, final.outcome.reason) == (status, reason)
            described = await handle.describe()
            assert described.status == WorkflowExecutionStatus.COMPLETED
            versioning = described.raw_description.workflow_execution_info.versioning_info
            assert versioning.deployment_version.build_id == "B", handle.id
            assert versioning.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE

        # Every workflow task before a promotion was the old build's, every one after it the
        # new build's; an unversioned worker's carry no deployment and no behaviour.
        auto = VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE
        none = VersioningBehavior.VERSIONING_BEHAVIOR_UNSPECIFIED
        for n, (handle, boundary) in enumerate(zip(handles, before_b, strict=True)):
            tasks = await completed_by(handle)
            start_a = before_a[0] if n == 4 else 0
            on_u = [task[1:] for task in tasks if task[0] <= start_a]
            on_a = [task[1:] for task in tasks if start_a < task[0] <= boundary]
            on_b = [task[1:] for task in tasks if task[0] > boundary]
            assert (n == 4) == bool(on_u), tasks
            assert all(task == ("", "", none) for task in on_u), tasks
            assert on_a and all(task == (deployment, "A", auto) for task in on_a), tasks
            assert on_b and all(task == (deployment, "B", auto) for task in on_b), tasks

        async def projected() -> None:
            rows = await pool.fetch("SELECT status FROM transitions WHERE facility = $1", facility)
            assert sorted(row["status"] for row in rows) == sorted(s.value for s, _ in expected)

        await assert_eventually(projected, within=30)
        shown = await run_cli(cli_env, "deployment", "status")
        assert f"deployment {deployment!r}: current B" in shown.output, shown.output
    finally:
        try:
            for worker, running in reversed(workers):
                await retire(worker, running)
        finally:
            await stop_server(process)


def test_a_worker_is_versioned_only_with_a_build_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAREBRIDGE_WORKER_BUILD_ID", raising=False)
    monkeypatch.delenv("CAREBRIDGE_WORKER_DEPLOYMENT_NAME", raising=False)
    assert deployment_config(Settings()) is None  # make run, the tests, compose
    monkeypatch.setenv("CAREBRIDGE_WORKER_BUILD_ID", "")  # an empty template value
    assert deployment_config(Settings()) is None
    monkeypatch.setenv("CAREBRIDGE_WORKER_BUILD_ID", "0.2.0")
    config = deployment_config(Settings())
    assert config is not None and config.use_worker_versioning
    assert config.version == WorkerDeploymentVersion("carebridge", "0.2.0")
    assert config.default_versioning_behavior == CommonVersioningBehavior.AUTO_UPGRADE
    monkeypatch.setenv("CAREBRIDGE_WORKER_BUILD_ID", "two words")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.delenv("CAREBRIDGE_WORKER_BUILD_ID")
    monkeypatch.setenv("CAREBRIDGE_WORKER_DEPLOYMENT_NAME", "care.bridge")  # "." splits versions
    with pytest.raises(ValidationError):
        Settings()
