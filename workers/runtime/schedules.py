"""Temporal Schedules for the scheduled work, created (or updated) at worker start."""

from __future__ import annotations

import dataclasses
from datetime import time

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from schemas.site import SiteConfig
from workflows.digest import DigestWorkflow
from workflows.sweep import SweepWorkflow

DIGEST_SCHEDULE = "carebridge-daily-digest"
SWEEP_SCHEDULE = "carebridge-consistency-sweep"


def _daily(at: time, zone: str) -> ScheduleSpec:
    return ScheduleSpec(
        calendars=[
            ScheduleCalendarSpec(hour=[ScheduleRange(at.hour)], minute=[ScheduleRange(at.minute)])
        ],
        time_zone_name=zone,
    )


def schedules(site: SiteConfig, task_queue: str) -> dict[str, Schedule]:
    zone = site.calendar.timezone
    config = site.notifications
    return {
        DIGEST_SCHEDULE: Schedule(
            action=ScheduleActionStartWorkflow(
                DigestWorkflow.run, id="carebridge-digest", task_queue=task_queue
            ),
            spec=_daily(config.digest_time, zone),
        ),
        SWEEP_SCHEDULE: Schedule(
            action=ScheduleActionStartWorkflow(
                SweepWorkflow.run, id="carebridge-sweep", task_queue=task_queue
            ),
            spec=_daily(config.sweep_time, zone),
        ),
    }


async def ensure_schedules(client: Client, site: SiteConfig, task_queue: str) -> list[str]:
    """Create each schedule, or bring an existing one to the configured spec (idempotent,
    and an operator's pause survives it)."""
    for schedule_id, schedule in schedules(site, task_queue).items():
        try:
            await client.create_schedule(schedule_id, schedule)
        except ScheduleAlreadyRunningError:

            def replace(
                current: ScheduleUpdateInput, wanted: Schedule = schedule
            ) -> ScheduleUpdate:
                # The configured action and spec; the operator's state (a pause and its note)
                # stays as it is: a worker start must not undo `temporal schedule toggle`.
                state = current.description.schedule.state
                return ScheduleUpdate(schedule=dataclasses.replace(wanted, state=state))

            await client.get_schedule_handle(schedule_id).update(replace)
    return sorted(schedules(site, task_queue))
