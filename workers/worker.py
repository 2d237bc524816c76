"""The Temporal worker: the transition, sweep and digest workflows and their activities on one
task queue."""

from __future__ import annotations

import asyncio
import compileall
import contextlib
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import asyncpg
import structlog
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import (
    Interceptor,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkerDeploymentConfig,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxRestrictions

import workflows
from activities.channels import Channels
from activities.maintenance import MaintenanceActivities
from activities.notifications import NotificationActivities
from activities.planning import PlanningActivities
from activities.projection import ProjectionActivities
from schemas.clock import Clock, wall_clock
from schemas.protocol_library import load_library
from workers.runtime.sandbox_runner import DirectContextSandboxRunner
from workers.runtime.settings import Settings
from workflows.digest import DigestWorkflow
from workflows.sweep import SweepWorkflow
from workflows.transition import TransitionWorkflow

log = structlog.get_logger(__name__)


def ensure_workflow_bytecode() -> None:
    """The sandbox re-imports the workflow modules for every new workflow instance. Without
    cached bytecode (PYTHONDONTWRITEBYTECODE, an editable install) each of those imports
    compiles the source again: 15% of a busy worker's CPU in a py-spy profile. Compile once
    at start; an installed package (pip compiles on install) or a read-only tree is left as
    it is."""
    with contextlib.suppress(OSError):
        compileall.compile_dir(Path(workflows.__file__).parent, quiet=1)


# Every workflow a versioned worker runs moves to the current build at its next workflow
# task. Transitions run 30 days: pinned to the build that started them, every build would
# have to keep polling for a month. Command changes are guarded by workflow.patched and
# checked by the replay tests over tests/histories, as for an unversioned worker.
VERSIONING_BEHAVIOR = VersioningBehavior.AUTO_UPGRADE


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """Worker Versioning for a worker with a build id (deploy/README.md, "Upgrading
    workers"); None, an unversioned worker, without one (`make run`, the tests)."""
    if settings.worker_build_id is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(
            deployment_name=settings.worker_deployment_name,
            build_id=settings.worker_build_id,
        ),
        use_worker_versioning=True,
        default_versioning_behavior=VERSIONING_BEHAVIOR,
    )


# The SDK's restrictions with carebridge's own workflow modules imported once (workflow_runner).
WORKFLOW_RESTRICTIONS = SandboxRestrictions.default.with_passthrough_modules("workflows")


def workflow_runner(*, inline: bool = False) -> WorkflowRunner:
    """The sandbox, with carebridge's own workflow modules passed through: the SDK's default
    re-imports every workflows/ module for each new instance (a start, or a replay after an
    eviction), the largest part of a busy worker's CPU. Passed through, they are imported once
    and the sandbox's runtime checks no longer see calls our modules make (as for schemas/
    and activities/ already); the replay tests run every committed history under the SDK's
    default sandbox and ruff bans the clock, randomness and I/O in workflows/, so a
    non-deterministic call still fails a check. `inline`: no sandbox at all (the
    simulation)."""
    if inline:
        return UnsandboxedWorkflowRunner()
    return DirectContextSandboxRunner(WORKFLOW_RESTRICTIONS)


def build_worker(
    client: Client,
    pool: asyncpg.Pool,
    settings: Settings,
    *,
    task_queue: str | None = None,
    clock: Clock = wall_clock,
    inline_workflows: bool = False,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """`clock`: the now the activities stamp rows with (simulated time in a simulation).
    `inline_workflows`: True runs the same workflow code without the sandbox (see
    workflow_runner) and on the event loop's thread rather than a thread of its own
    watched by the SDK's 2 s deadlock detector (the SDK's debug mode). Only the simulation
    does, on one core a run (measured: 8 days at 40 a day in 97 s against 155 s); every
    deployed worker and the test suite's keep the sandbox and the detector."""
    ensure_workflow_bytecode()
    library = load_library(settings.protocols_dir)
    channels = Channels(settings.channel_settings)
    planning = PlanningActivities()
    projection = ProjectionActivities(pool, clock)
    notifications = NotificationActivities(pool, channels, library.site, settings.public_url, clock)
    maintenance = MaintenanceActivities(
        pool,
        client,
        channels,
        library.site.notifications,
        library.site.calendar_zone(),
        settings.public_url,
        inbox_retention_days=settings.inbox_retention_days,
        clock=clock,
    )
    versioning = deployment_config(settings)
    if versioning is not None:  # it runs nothing until its build is current: say which
        log.info(
            "worker.versioned",
            deployment=versioning.version.deployment_name,
            build_id=versioning.version.build_id,
            behavior=versioning.default_versioning_behavior.name,
        )
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        max_cached_workflows=settings.worker_cached_workflows,
        # A storm's tasks queue at the server, not half-run in 500 threads contending for one
        # GIL past the 10 s workflow task timeout (each timeout replays the workflow); and a
        # cached workflow's task waits its turn on this worker's sticky queue rather than
        # moving to the shared queue after 10 s, which replays it too.
        max_concurrent_workflow_tasks=settings.worker_workflow_task_slots,
        sticky_queue_schedule_to_start_timeout=timedelta(
            seconds=settings.worker_sticky_timeout_seconds
        ),
        # Each activity holds at most one connection: slots beyond the pool would only queue
        # for one past their start-to-close timeout and retry (a deadline storm).
        max_concurrent_activities=settings.database_pool_size,
        max_concurrent_local_activities=settings.database_pool_size,
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_seconds),
        deployment_config=versioning,
        workflow_runner=workflow_runner(inline=inline_workflows),
        debug_mode=inline_workflows,
        interceptors=interceptors,
        workflows=[TransitionWorkflow, DigestWorkflow, SweepWorkflow],
        activities=[
            planning.plan_transition,
            planning.schedule_step,
            projection.record_transition,
            notifications.notify,
            maintenance.send_digests,
            maintenance.sweep_projection,
        ],
    )


async def until_polling(client: Client, task_queue: str, *, interval: float = 1.0) -> None:
    """Return once Temporal lists this client's identity among the task queue's workflow
    pollers: the worker has connected and polls (its readiness)."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    while True:
        with contextlib.suppress(Exception):  # Temporal away: not polling either, try again
            response = await client.workflow_service.describe_task_queue(request)
            if any(poller.identity == client.identity for poller in response.pollers):
                return
        await asyncio.sleep(interval)
