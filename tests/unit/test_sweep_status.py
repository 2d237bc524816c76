"""The nightly sweep closes projection rows only of workflows that have ended: a running one
(visibility not caught up yet) is never marked failed."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowExecutionStatus

from activities.projection_repair import ended_status
from schemas.transition import TransitionStatus


@pytest.mark.parametrize(
    ("temporal", "projection"),
    [
        (WorkflowExecutionStatus.RUNNING, None),
        (WorkflowExecutionStatus.CONTINUED_AS_NEW, None),
        (None, None),
        (WorkflowExecutionStatus.CANCELED, TransitionStatus.CANCELLED),
        (WorkflowExecutionStatus.TERMINATED, TransitionStatus.TERMINATED),
        (WorkflowExecutionStatus.FAILED, TransitionStatus.FAILED),
        (WorkflowExecutionStatus.TIMED_OUT, TransitionStatus.FAILED),
    ],
)
def test_only_ended_workflows_get_a_closing_status(
    temporal: WorkflowExecutionStatus | None, projection: TransitionStatus | None
) -> None:
    assert ended_status(temporal) == projection
