"""Worker Versioning commands: which build of the workers Temporal routes to, and making a
new build current (deploy/README.md, "Upgrading workers").

A worker started with CAREBRIDGE_WORKER_BUILD_ID belongs to the Worker Deployment
CAREBRIDGE_WORKER_DEPLOYMENT_NAME. It polls but receives no task until its build is the
deployment's current version; then every new transition and, at its next workflow task,
every running one (AUTO_UPGRADE) goes to that build alone. `promote` is what
`temporal worker deployment set-current-version --deployment-name carebridge --build-id B`
does, with a check first that a worker of the build polls carebridge's task queue.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from workers.cli.app import app, console, run_command
from workers.runtime.settings import Settings

if TYPE_CHECKING:  # Temporal's client is imported by the commands that call it
    from temporalio.api.enums.v1 import WorkerDeploymentVersionStatus
    from temporalio.client import Client

deployment_app = typer.Typer(
    help="Worker Versioning: the current worker build, and promoting a new one."
)
app.add_typer(deployment_app, name="deployment")

POLL_INTERVAL = 1.0  # seconds between looks while waiting for pollers or for routing
ROUTING_WAIT = 30.0  # at least this long for a new current version to reach the task queues


def _status_name(status: WorkerDeploymentVersionStatus.ValueType) -> str:
    from temporalio.api.enums.v1 import WorkerDeploymentVersionStatus as Status

    names: dict[WorkerDeploymentVersionStatus.ValueType, str] = {
        Status.WORKER_DEPLOYMENT_VERSION_STATUS_INACTIVE: "inactive",
        Status.WORKER_DEPLOYMENT_VERSION_STATUS_CURRENT: "current",
        Status.WORKER_DEPLOYMENT_VERSION_STATUS_RAMPING: "ramping",
        Status.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINING: "draining",
        Status.WORKER_DEPLOYMENT_VERSION_STATUS_DRAINED: "drained",
    }
    return names.get(status, "unknown")


@dataclass(frozen=True)
class BuildRow:
    build_id: str
    status: str  # current, ramping, draining, drained, inactive
    created_at: datetime | None
    pollers: int  # distinct workers of the build seen polling the task queue


@dataclass(frozen=True)
class DeploymentStatus:
    deployment: str
    task_queue: str
    exists: bool  # a worker of the deployment has polled at some point
    current: str | None = None  # build id; None: unversioned workers get the tasks
    ramping: str | None = None
    ramp_percentage: float = 0.0
    routing_propagated: bool = True
    builds: list[BuildRow] = field(default_factory=list)
    unversioned_pollers: int = 0
    conflict_token: bytes = b""

    def build(self, build_id: str) -> BuildRow | None:
        return next((row for row in self.builds if row.build_id == build_id), None)


async def _pollers(client: Client, task_queue: str, deployment: str) -> tuple[dict[str, int], int]:
    """Workers seen polling the workflow task queue (the server keeps a few minutes of
    pollers): distinct identities per build of this deployment, and unversioned ones."""
    from temporalio.api.enums.v1 import TaskQueueType, WorkerVersioningMode
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    builds: dict[str, set[str]] = {}
    unversioned: set[str] = set()
    for poller in response.pollers:
        options = poller.deployment_options
        if options.worker_versioning_mode == WorkerVersioningMode.WORKER_VERSIONING_MODE_VERSIONED:
            if options.deployment_name == deployment:
                builds.setdefault(options.build_id, set()).add(poller.identity)
        else:
            unversioned.add(poller.identity)
    return {build: len(ids) for build, ids in builds.items()}, len(unversioned)


async def deployment_status(client: Client, settings: Settings) -> DeploymentStatus:
    from temporalio.api.enums.v1 import RoutingConfigUpdateState
    from temporalio.api.workflowservice.v1 import DescribeWorkerDeploymentRequest
    from temporalio.service import RPCError, RPCStatusCode

    deployment, task_queue = settings.worker_deployment_name, settings.task_queue
    pollers, unversioned = await _pollers(client, task_queue, deployment)
    try:
        described = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace, deployment_name=deployment)
        )
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return DeploymentStatus(
            deployment, task_queue, exists=False, unversioned_pollers=unversioned
        )
    info = described.worker_deployment_info
    routing = info.routing_config
    builds = [
        BuildRow(
            build_id=summary.deployment_version.build_id,
            status=_status_name(summary.status),
            created_at=summary.create_time.ToDatetime()
            if summary.HasField("create_time")
            else None,
            pollers=pollers.get(summary.deployment_version.build_id, 0),
        )
        for summary in info.version_summaries
    ]
    return DeploymentStatus(
        deployment,
        task_queue,
        exists=True,
        current=routing.current_deployment_version.build_id or None,
        ramping=routing.ramping_deployment_version.build_id or None,
        ramp_percentage=routing.ramping_version_percentage,
        routing_propagated=info.routing_config_update_state
        != RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_IN_PROGRESS,
        builds=sorted(builds, key=lambda row: row.created_at or datetime.min, reverse=True),
        unversioned_pollers=unversioned,
        conflict_token=described.conflict_token,
    )


def _not_polling(status: DeploymentStatus, build_id: str) -> str:
    known = status.build(build_id) is not None
    return (
        f"no worker of build {build_id!r} is polling task queue {status.task_queue!r} "
        f"of deployment {status.deployment!r}"
        + (" any more" if known else " yet")
        + f": start workers with CAREBRIDGE_WORKER_BUILD_ID={build_id} (and "
        f"CAREBRIDGE_WORKER_DEPLOYMENT_NAME={status.deployment}), then promote again "
        "(--wait SECONDS waits for them)"
    )


async def promote(client: Client, settings: Settings, build_id: str, wait: float) -> str | None:
    """Make `build_id` the current version once a worker of it polls the task queue
    (waiting up to `wait` seconds for one), then wait for the routing to reach the task
    queues. Returns the build that was current before (None: unversioned workers), which is
    `build_id` itself when it already was (nothing is changed then)."""
    from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest
    from temporalio.service import RPCError

    from workers.runtime.embedded import StackError

    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        status = await deployment_status(client, settings)
        if status.current == build_id:
            return build_id
        row = status.build(build_id)
        if row is not None and row.pollers > 0:
            break
        if loop.time() >= deadline:
            raise StackError(_not_polling(status, build_id))
        await asyncio.sleep(POLL_INTERVAL)
    try:
        await client.workflow_service.set_worker_deployment_current_version(
            SetWorkerDeploymentCurrentVersionRequest(
                namespace=client.namespace,
                deployment_name=settings.worker_deployment_name,
                build_id=build_id,
                conflict_token=status.conflict_token,
                identity=client.identity,
            )
        )
    except RPCError as exc:
        raise StackError(
            f"Temporal refused to make build {build_id!r} current: {exc.message}"
        ) from exc
    routed_by = max(deadline, loop.time() + ROUTING_WAIT)
    while not (await deployment_status(client, settings)).routing_propagated:
        if loop.time() >= routed_by:
            raise StackError(
                f"build {build_id!r} is current, but its routing has not reached every task "
                "queue yet: check `carebridge deployment status` in a minute"
            )
        await asyncio.sleep(POLL_INTERVAL)
    return status.current


async def _status(settings: Settings) -> DeploymentStatus:
    from workers.runtime.temporal import connect

    client = await connect(settings)
    return await deployment_status(client, settings)


@deployment_app.command("status")
def status() -> None:
    """The current worker build, and every build the server knows with its pollers."""
    found = run_command(_status)
    unversioned = f"; {found.unversioned_pollers} unversioned worker(s) polling"
    if not found.exists:
        console.print(
            f"no versioned worker of deployment {found.deployment!r} has polled yet: tasks on "
            f"{found.task_queue!r} go to unversioned workers{unversioned}"
        )
        return
    current = found.current or "unversioned workers"
    ramping = (
        f", ramping {found.ramping or 'unversioned'} at {found.ramp_percentage:g}%"
        if found.ramping or found.ramp_percentage
        else ""
    )
    pending = "" if found.routing_propagated else " (routing still propagating)"
    console.print(f"deployment {found.deployment!r}: current {current}{ramping}{pending}")
    table = Table(title=f"builds (pollers on {found.task_queue})")
    table.add_column("build")
    table.add_column("status")
    table.add_column("created (UTC)")
    table.add_column("pollers", justify="right")
    for row in found.builds:
        created = f"{row.created_at:%Y-%m-%d %H:%M:%S}" if row.created_at else ""
        table.add_row(row.build_id, row.status, created, str(row.pollers))
    console.print(table)
    console.print(f"{len(found.builds)} build(s){unversioned}")


@deployment_app.command("promote")
def promote_command(
    build_id: str = typer.Argument(..., help="the build to make current (its image tag)"),
    wait: float = typer.Option(
        0.0, "--wait", min=0, help="seconds to wait for a worker of the build to poll"
    ),
) -> None:
    """Make a build current: new and running transitions run on it (idempotent)."""

    async def main(settings: Settings) -> tuple[str, str | None]:
        from workers.runtime.temporal import connect

        client = await connect(settings)
        return settings.worker_deployment_name, await promote(client, settings, build_id, wait)

    deployment, previous = run_command(main)
    if previous == build_id:
        console.print(f"build {build_id} is already current in deployment {deployment!r}")
    else:
        console.print(
            f"build {build_id} is now current in deployment {deployment!r} "
            f"(was {previous or 'unversioned workers'})"
        )
