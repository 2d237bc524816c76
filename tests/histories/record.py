"""Record TransitionWorkflow histories for the replay tests.

Run `python -m tests.histories.record` after a deliberate workflow change (behind
`workflow.patched`), and commit the new file beside the old ones: old histories must keep
replaying for as long as transitions started under them can be running (30 days and more).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

from schemas.transition import CompleteStepRequest
from tests.workflow.support import new_worker, start_time_skipping_env, start_transition
from workflows.transition import TransitionWorkflow

HERE = Path(__file__).resolve().parent


async def record(name: str) -> Path:
    env = await start_time_skipping_env()
    try:
        async with new_worker(env) as worker:
            discharged = await env.get_current_time()
            handle = await start_transition(env, worker, discharged, tid="0" * 24)
            await env.sleep(timedelta(days=7))  # contact goes overdue
            for step in ("interactive_contact", "medication_reconciliation"):
                await handle.execute_update(
                    TransitionWorkflow.complete_step,
                    CompleteStepRequest(step_id=step, by="rn.alvarez", note="recorded history"),
                )
            await handle.result()
            history = await handle.fetch_history()
    finally:
        await env.shutdown()
    path = HERE / f"{name}.json"
    path.write_text(history.to_json())
    return path


if __name__ == "__main__":
    print(asyncio.run(record(sys.argv[1] if len(sys.argv) > 1 else "transition_tcm_minimal_v1")))
