"""The workflow's time at each activity it schedules, noted on the run's clock: during a skip
an activity's stamp takes it instead of asking the test server (a round trip each, a fifth
of a run's wall time, measured: 8 days at 40 a day in 81 s with no clock reads against 102 s).

It is the server's time: the test server does not skip while a workflow task or an activity
is outstanding, so an activity runs at the instant the workflow task that scheduled it ran.
An activity's retry after a backoff the server skipped keeps the time of its last
scheduling (seconds to minutes behind, under the --faults run's PostgreSQL restart only)."""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.worker import (
    Interceptor,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from workers.simulation.server_clock import ServerClock


class ActivityTimeNoting(Interceptor):
    def __init__(self, clock: ServerClock) -> None:
        noting = clock

        class Outbound(WorkflowOutboundInterceptor):
            def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
                noting.note(workflow.now())
                return super().start_activity(input)

            def start_local_activity(
                self, input: StartLocalActivityInput
            ) -> workflow.ActivityHandle[Any]:
                noting.note(workflow.now())
                return super().start_local_activity(input)

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

        self._inbound = Inbound

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return self._inbound
