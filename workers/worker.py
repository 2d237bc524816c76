"""The Temporal worker: the transition workflow and its activities on one task queue."""

from __future__ import annotations

import compileall
import contextlib
from datetime import timedelta
from pathlib import Path

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

import workflows
from activities.channels import Channels
from activities.maintenance import MaintenanceActivities
from activities.notifications import NotificationActivities
from activities.planning import PlanningActivities
from activities.projection import ProjectionActivities
from ingest.protocol_library import load_library
from workers.settings import Settings
from workflows.digest import DigestWorkflow
from workflows.sweep import SweepWorkflow
from workflows.transition import TransitionWorkflow


def ensure_workflow_bytecode() -> None:
    """The sandbox re-imports the workflow modules for every new workflow instance. Without
    cached bytecode (PYTHONDONTWRITEBYTECODE, an editable install) each of those imports
    compiles the source again: 15% of a busy worker's CPU in a py-spy profile. Compile once
    at start; an installed package (pip compiles on install) or a read-only tree is left as
    it is."""
    with contextlib.suppress(OSError):
        compileall.compile_dir(Path(workflows.__file__).parent, quiet=1)


def build_worker(
    client: Client, pool: asyncpg.Pool, settings: Settings, *, task_queue: str | None = None
) -> Worker:
    ensure_workflow_bytecode()
    library = load_library(settings.protocols_dir)
    channels = Channels(settings.channel_settings)
    planning = PlanningActivities()
    projection = ProjectionActivities(pool)
    notifications = NotificationActivities(
        pool, channels, library.site.notifications, settings.public_url
    )
    maintenance = MaintenanceActivities(
        pool,
        client,
        channels,
        library.site.notifications,
        library.site.calendar_zone(),
        settings.public_url,
    )
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        max_cached_workflows=settings.worker_cached_workflows,
        # Each activity holds at most one connection: slots beyond the pool would only queue
        # for one past their start-to-close timeout and retry (a deadline storm).
        max_concurrent_activities=settings.database_pool_size,
        max_concurrent_local_activities=settings.database_pool_size,
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_seconds),
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
