"""SweepWorkflow: the nightly comparison of the projection with Temporal's open workflows."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.maintenance import MaintenanceActivities
    from schemas.maintenance import SweepReport

# A sweep that keeps failing (PostgreSQL or Temporal away) gives up within the hour and the
# run fails where operators see it; the next night's run sweeps everything again.
SWEEP_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=10), maximum_attempts=5)
SWEEP_DEADLINE = timedelta(hours=1)


@workflow.defn(name="SweepWorkflow")
class SweepWorkflow:
    @workflow.run
    async def run(self) -> SweepReport:
        return await workflow.execute_activity_method(
            MaintenanceActivities.sweep_projection,
            start_to_close_timeout=timedelta(minutes=10),
            schedule_to_close_timeout=SWEEP_DEADLINE,
            retry_policy=SWEEP_RETRY,
        )
