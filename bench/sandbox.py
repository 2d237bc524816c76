"""What a workflow instance costs the worker to create and replay, by workflow runner: every
committed history under tests/histories replayed `--rounds` times (each replay a new instance,
as a replay from history after a cache eviction or a worker restart is), and the shortest one
(a transition closed in its first workflow task: what creating an instance costs) 60 times a
round, with

- `strict`: the SDK's default sandbox, re-importing every workflows/ module per instance;
- `shipped`: the sandbox carebridge's worker runs (workers.worker.workflow_runner);
- `raw`: no sandbox at all (UnsandboxedWorkflowRunner), the baseline.

    python -m bench.sandbox --rounds 5

Prints CPU milliseconds per replayed instance and each runner's ratio to the raw one.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.results import save
from workers.runtime.temporal import DATA_CONVERTER
from workers.worker import workflow_runner
from workflows.transition import TransitionWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "tests" / "histories"


def histories() -> list[WorkflowHistory]:
    return [
        WorkflowHistory.from_json(f"transition-{path.stem}", path.read_text())
        for path in sorted(HISTORIES.glob("*.json"))
    ]


async def each(loaded: list[WorkflowHistory]) -> AsyncIterator[WorkflowHistory]:
    for history in loaded:
        yield history


async def replay_cost(runner: WorkflowRunner, loaded: list[WorkflowHistory], rounds: int) -> float:
    """CPU milliseconds per replayed instance (this process: the worker's Python and Core)."""
    replayer = Replayer(
        workflows=[TransitionWorkflow], data_converter=DATA_CONVERTER, workflow_runner=runner
    )
    await replayer.replay_workflows(each(loaded[:2]))  # warm: the first import of everything
    started = time.process_time()
    for _ in range(rounds):
        results = await replayer.replay_workflows(each(loaded), raise_on_replay_failure=True)
        assert not results.replay_failures
    return (time.process_time() - started) * 1000 / (rounds * len(loaded))


async def run(rounds: int) -> dict[str, Any]:
    loaded = histories()
    shortest = min(loaded, key=lambda history: len(history.events))
    runners: dict[str, WorkflowRunner] = {
        "raw": UnsandboxedWorkflowRunner(),
        "strict": SandboxedWorkflowRunner(),
        "shipped": workflow_runner(),
    }
    cost = {name: round(await replay_cost(r, loaded, rounds), 2) for name, r in runners.items()}
    new = {
        name: round(await replay_cost(r, [shortest] * 60, rounds), 2) for name, r in runners.items()
    }
    return {
        "bench": "sandbox",
        "histories": len(loaded),
        "rounds": rounds,
        "cpu_ms_per_instance": cost,
        "ratio_to_raw": {name: round(ms / cost["raw"], 2) for name, ms in cost.items()},
        "shortest_history_events": len(shortest.events),
        "cpu_ms_per_new_instance": new,
        "new_instance_ratio_to_raw": {name: round(ms / new["raw"], 2) for name, ms in new.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    result = asyncio.run(run(parser.parse_args().rounds))
    print(
        f"{result['histories']} histories x {result['rounds']} rounds; the shortest "
        f"({result['shortest_history_events']} events) x 60 a round"
    )
    print(f"{'runner':10}{'ratio':>8}{'CPU ms/instance':>18}{'ratio':>8}{'ms/new instance':>18}")
    for name, ms in result["cpu_ms_per_instance"].items():
        new = result["cpu_ms_per_new_instance"][name]
        ratio = result["new_instance_ratio_to_raw"][name]
        print(f"{name:10}{result['ratio_to_raw'][name]:>8}{ms:>18}{ratio:>8}{new:>18}")
    save("sandbox", result)


if __name__ == "__main__":
    main()
