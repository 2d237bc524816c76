"""`carebridge replay`: the histories of running (or any listed) workflows replayed against
this build's workflow code, before it is promoted (deploy/runbooks/upgrades.md). A history
that does not replay is a non-determinism error the release would cause in production."""

from __future__ import annotations

import typer

from workers.cli.app import app, console, err_console, run_command
from workers.runtime.settings import Settings

RUNNING = "ExecutionStatus = 'Running'"


@app.command()
def replay(
    query: str = typer.Option(RUNNING, help="which workflows (a Temporal visibility query)"),
    limit: int = typer.Option(1000, min=1, help="at most this many histories"),
) -> None:
    """Replay workflow histories from Temporal against this build's code (exit 1 if any
    does not replay). Read-only: nothing is started, signalled or changed."""
    from temporalio.worker import Replayer

    from workers.runtime.temporal import connect
    from workflows.digest import DigestWorkflow
    from workflows.sweep import SweepWorkflow
    from workflows.transition import TransitionWorkflow

    async def main(settings: Settings) -> tuple[int, dict[str, str]]:
        client = await connect(settings)
        replayer = Replayer(
            workflows=[TransitionWorkflow, DigestWorkflow, SweepWorkflow],
            data_converter=client.data_converter,
        )
        histories = client.list_workflows(query, limit=limit).map_histories()
        results = await replayer.replay_workflows(histories, raise_on_replay_failure=False)
        failures = {run: type(error).__name__ for run, error in results.replay_failures.items()}
        return len(failures), failures

    failed, failures = run_command(main)
    for run_id, kind in sorted(failures.items()):
        err_console.print(f"[red]does not replay:[/] run {run_id} ({kind})")
    if failed:
        err_console.print(f"{failed} histories do not replay on this build: do not promote it")
        raise typer.Exit(1)
    console.print("every history replays on this build")
