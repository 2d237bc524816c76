"""SweepWorkflow: the nightly comparison of the projection with Temporal's open workflows."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.maintenance import SweepReport


@workflow.defn(name="SweepWorkflow")
class SweepWorkflow:
    @workflow.run
    async def run(self) -> SweepReport:
        report: SweepReport = await workflow.execute_activity(
            "sweep_projection",
            result_type=SweepReport,
            start_to_close_timeout=timedelta(minutes=10),
        )
        return report
