"""DigestWorkflow: the daily digest per care team, started by a Temporal Schedule."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.maintenance import DigestResult


@workflow.defn(name="DigestWorkflow")
class DigestWorkflow:
    @workflow.run
    async def run(self) -> DigestResult:
        result: DigestResult = await workflow.execute_activity(
            "send_digests", result_type=DigestResult, start_to_close_timeout=timedelta(minutes=5)
        )
        return result
