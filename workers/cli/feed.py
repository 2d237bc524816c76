"""The feed's operator actions on the command line: a supervisor undoes a wrong automatic
change (undo-feed: the workflow's undo_feed Update), a care manager records that TRC
information was filed in the outpatient record (filed). Both audited, both idempotent."""

from __future__ import annotations

from datetime import datetime

import typer

from schemas.transition import FeedChange, UndoFeedRequest
from workers.cli.app import app, console, run_command
from workers.cli.audit_trail import audited
from workers.cli.transitions import BY, KEY, _act, _instant, _key, _request
from workers.runtime.settings import Settings

COMPONENTS = ("admission_notification", "discharge_information")


@app.command("undo-feed")
def undo_feed(
    transition_id: str,
    step: str = typer.Argument("follow_up_visit"),
    undo: FeedChange = typer.Option(FeedChange.COMPLETION, help="what the feed did"),
    reason: str = typer.Option(..., "--reason", help="why the feed was wrong (kept on the step)"),
    by: str = BY,
    idempotency_key: str | None = KEY,
) -> None:
    """Undo the feed's completion or appointment of a step (a supervisor's action); a repeat
    changes nothing."""
    request = _request(UndoFeedRequest, step_id=step, by=by, undo=undo, reason=reason)
    _act(transition_id, "undo_feed", request, f"{step}: {undo.value} undone", _key(idempotency_key))


@app.command()
def filed(
    transition_id: str,
    component: str = typer.Argument(..., help=" or ".join(COMPONENTS)),
    at: str = typer.Option(..., "--at", help="when it was filed (local to the facility)"),
    by: str = BY,
) -> None:
    """Record that a TRC admission notification or the discharge information was filed in
    the outpatient record: the TRC report counts it within its window; the same filing
    again is recorded once."""
    if component not in COMPONENTS:
        raise typer.BadParameter(" or ".join(COMPONENTS), param_hint="COMPONENT")
    when: datetime = _instant(transition_id, at)

    async def main(settings: Settings) -> bool:
        from store import trc_evidence
        from workers.runtime.embedded import StackError

        async with audited(
            settings,
            action="filed",
            resource_type="transition",
            resource_id=transition_id,
            by=by,
        ) as pool:
            known = await pool.fetchval(
                "SELECT 1 FROM transitions WHERE transition_id = $1", transition_id
            )
            if known is None:
                raise StackError(f"There is no transition {transition_id}.")
            return await trc_evidence.record(
                pool,
                trc_evidence.Evidence(
                    transition_id=transition_id,
                    component=trc_evidence.Component(component),
                    source=trc_evidence.Source.FILED,
                    at=when,
                    actor=by,
                ),
            )

    new = run_command(main)
    console.print(
        f"{component} filed {when.isoformat(timespec='minutes')}"
        + ("" if new else " (recorded before)")
    )
