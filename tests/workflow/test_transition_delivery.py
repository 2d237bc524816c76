"""Whether a notice is an outbox row written in the workflow task (a local activity) or an
e-mail or page that may wait (a remote one) follows the transport the site maps its channel
to, as fixed when the transition started, not the channel's name."""

from __future__ import annotations

from datetime import time, timedelta

from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from schemas.site import Transport
from schemas.transition import EscalationNotice
from tests.workflow.support import (
    advance_to,
    new_worker,
    next_weekday,
    planned_state,
    start_transition,
)

DELIVERED: list[tuple[str, Transport | None, bool]] = []


@activity.defn(name="notify")
async def notify_where(notice: EscalationNotice) -> bool:
    DELIVERED.append((notice.channel, notice.transport, activity.info().is_local))
    return True


async def test_a_channel_runs_local_only_when_its_transport_is_the_worklist(
    skipping_env: WorkflowEnvironment,
) -> None:
    async with new_worker(skipping_env, deliver=notify_where) as worker:
        monday = next_weekday(await skipping_env.get_current_time(), 0, time(9, 0))
        await advance_to(skipping_env, monday)
        # This site sends its "worklist" level by e-mail and keeps its pages in the app.
        transports = {"worklist": Transport.EMAIL, "email": Transport.EMAIL}
        handle = await start_transition(skipping_env, worker, monday, transports=transports)
        await planned_state(handle)
        DELIVERED.clear()
        await skipping_env.sleep(timedelta(days=6))  # every ladder to its top
        await handle.terminate("test over")
    seen = set(DELIVERED)
    assert ("worklist", Transport.EMAIL, False) in seen  # remote: it may wait on SMTP
    assert ("email", Transport.EMAIL, False) in seen
    assert ("page", Transport.WORKLIST, True) in seen  # unmapped: an outbox row, local
    assert {local for channel, _, local in seen if channel != "page"} == {False}
