"""The Temporal worker: the transition workflow and its activities on one task queue."""

from __future__ import annotations

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from activities.notifications import NotificationActivities
from activities.planning import PlanningActivities
from activities.projection import ProjectionActivities
from workers.settings import Settings
from workflows.transition import TransitionWorkflow


def build_worker(
    client: Client, pool: asyncpg.Pool, settings: Settings, *, task_queue: str | None = None
) -> Worker:
    planning = PlanningActivities()
    projection = ProjectionActivities(pool)
    notifications = NotificationActivities(pool)
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=[TransitionWorkflow],
        activities=[
            planning.plan_transition,
            planning.schedule_step,
            projection.record_transition,
            notifications.notify,
        ],
    )
