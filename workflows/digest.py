"""DigestWorkflow: the daily digest per care team, started by a Temporal Schedule."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.maintenance import MaintenanceActivities
    from schemas.maintenance import DIGEST_FAILED, DigestResult

# A team whose digest fails is tried again (the teams already sent are skipped) a few times
# within the hour, then reported; tomorrow's run is the next chance. Never retried for ever.
DIGEST_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=10), maximum_attempts=4)
DIGEST_DEADLINE = timedelta(hours=1)


@workflow.defn(name="DigestWorkflow")
class DigestWorkflow:
    @workflow.run
    async def run(self) -> DigestResult:
        try:
            result = await workflow.execute_activity_method(
                MaintenanceActivities.send_digests,
                start_to_close_timeout=timedelta(minutes=5),
                schedule_to_close_timeout=DIGEST_DEADLINE,
                retry_policy=DIGEST_RETRY,
            )
        except ActivityError as failure:
            cause = failure.cause
            if not isinstance(cause, ApplicationError) or cause.type != DIGEST_FAILED:
                raise  # not a partial delivery (the database, a bug): the run fails visibly
            partial = DigestResult.model_validate(cause.details[0])
            workflow.logger.warning("%d digest(s) undelivered", len(partial.undelivered))
            return partial  # each failed team is in digest_deliveries, with its reason
        return result
