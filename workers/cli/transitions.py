"""Transition commands: worklists, live state, step actions (Updates) and reports."""

from __future__ import annotations

import getpass
import json
import re
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import typer
from pydantic import BaseModel, ValidationError
from rich.table import Table

from schemas import keys
from schemas.care_plan import build_care_plan
from schemas.local_time import parse_instant
from schemas.protocol import RiskTier
from schemas.protocol_library import load_library
from schemas.sentences import field_errors, refusal
from schemas.site import SiteConfig
from schemas.timeline import annotated
from schemas.transition import (
    AttemptRequest,
    AttemptResult,
    CancelStepRequest,
    CompleteStepRequest,
    Complexity,
    NoteRequest,
    ReassignRequest,
    SnoozeRequest,
    TransitionState,
    TransitionStatus,
)
from schemas.worklist import ME, PatientSummary, TransitionQuery
from workers.cli.app import app, console, err_console, run_command, site_zone
from workers.cli.audit_trail import audited
from workers.cli.views import (
    print_care_plan,
    print_patient,
    print_state,
    timeline_table,
    transitions_table,
)
from workers.runtime.settings import Settings

if TYPE_CHECKING:  # Temporal, asyncpg and the workflow are imported when a command runs
    import asyncpg
    from temporalio.client import WorkflowHandle

    from store.encryption import BlindIndex, FieldCipher


@app.command("list")
def list_transitions(
    status: TransitionStatus | None = typer.Option(None),
    protocol: str | None = typer.Option(None),
    facility: str | None = typer.Option(None),
    team: str | None = typer.Option(None, help="the care team (site.yaml care_teams)"),
    assignee: str | None = typer.Option(
        None, help=f"has an open step assigned to ('{ME}': --by, else your user name)"
    ),
    owner: str | None = typer.Option(
        None, help=f"the transition's owner, a care manager ('{ME}': --by, else your user name)"
    ),
    mine: bool = typer.Option(False, "--mine", help="my patients: --owner me"),
    overdue: bool | None = typer.Option(None, "--overdue/--not-overdue"),
    due_today: bool = typer.Option(
        False, "--due-today", help="has a step due today, whatever its other steps"
    ),
    due_on: datetime | None = typer.Option(
        None, "--due-on", formats=["%Y-%m-%d"], help="the day 'due today' means"
    ),
    discharged_from: datetime | None = typer.Option(None, "--from", formats=["%Y-%m-%d"]),
    discharged_to: datetime | None = typer.Option(None, "--to", formats=["%Y-%m-%d"]),
    risk: RiskTier | None = typer.Option(None),
    patient: str | None = typer.Option(
        None, "--patient", help="find the patient: name, MRN, birth date or phone"
    ),
    sort: str | None = typer.Option(
        None, help="next_due, discharged, escalation or urgency (an owner's default)"
    ),
    page: int = typer.Option(1, min=1),
    page_size: int = typer.Option(50, min=1, max=500),
    by: str | None = typer.Option(
        None, "--by", envvar="CAREBRIDGE_USER", help="who asks (default: your user name)"
    ),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table"),
) -> None:
    """Transitions from the projection (the same filters as GET /transitions), each with
    who the patient is and every step that is overdue or due today; every patient shown is
    in the audit log under --by (or your user name). --mine: my patients, overdue and due
    today first."""
    owner = ME if mine else owner
    try:
        query = TransitionQuery(
            status=status,
            protocol=protocol,
            facility=facility,
            team=team,
            assignee=assignee,
            owner=owner,
            overdue=overdue,
            due_today=due_today,
            due_on=due_on.date() if due_on else None,
            discharged_from=discharged_from.date() if discharged_from else None,
            discharged_to=discharged_to.date() if discharged_to else None,
            risk_tier=risk,
            q=patient.strip() if patient and patient.strip() else None,
            sort=sort or ("urgency" if owner else "next_due"),
            page=page,
            page_size=page_size,
        ).for_caller(by or getpass.getuser())
    except ValidationError as exc:
        err_console.print(f"[red]error:[/] {field_errors(exc.errors()[:1])}")
        raise typer.Exit(1) from None

    async def main(settings: Settings) -> tuple[list[dict[str, Any]], int, SiteConfig]:
        from store import worklist

        site = load_library(settings.protocols_dir).site
        cipher, index = phi_keys(settings)
        shown: list[tuple[str | None, str | None]] = []
        async with audited(
            settings,
            action="list",
            resource_type="transition",
            resource_id=None,
            by=by,
            changes=False,
            shown=shown,
        ) as pool:
            rows, total = await worklist.page(pool, cipher, index, query, site)
            shown.extend((r["transition_id"], r["patient_key"]) for r in rows if r["patient"])
        return rows, total, site

    rows, total, site = run_command(main)
    if as_json:
        for row in rows:
            patient = row["patient"].model_dump(mode="json") if row["patient"] else None
            console.print_json(json.dumps(row | {"patient": patient}, default=str), indent=None)
        return
    table = transitions_table(rows, site)
    table.title = f"{len(rows)} of {total} transition(s)"
    console.print(table)


def phi_keys(settings: Settings) -> tuple[FieldCipher, BlindIndex]:
    """What opens the registry and searches it: the payload keyring, the key secret."""
    from store.encryption import BlindIndex, FieldCipher
    from workers.runtime.temporal import keyring_for

    keyring = keyring_for(settings)
    return FieldCipher(keyring.keys, keyring.current), BlindIndex(
        settings.key_secret.get_secret_value()
    )


async def _patient(
    pool: asyncpg.Pool, settings: Settings, state: TransitionState
) -> PatientSummary | None:
    """Who the transition's patient is (the registry), aged on its facility's today."""
    from store import people

    keys_ = await people.patient_keys(pool, [state.transition_id])
    today = datetime.now(load_library(settings.protocols_dir).site.zone_for(state.facility))
    found = await people.of_transitions(
        pool, phi_keys(settings)[0], keys_, {state.transition_id: today.date()}
    )
    return found.get(state.transition_id)


async def _handle(settings: Settings, transition_id: str) -> WorkflowHandle[Any, Any]:
    from workers.runtime.temporal import connect
    from workflows.transition import TransitionWorkflow

    client = await connect(settings)
    return client.get_workflow_handle_for(TransitionWorkflow.run, keys.workflow_id(transition_id))


async def _state(settings: Settings, transition_id: str) -> TransitionState:
    from temporalio.service import RPCError, RPCStatusCode

    from workers.runtime.embedded import StackError
    from workflows.transition import TransitionWorkflow

    handle = await _handle(settings, transition_id)
    try:
        state: TransitionState = await handle.query(TransitionWorkflow.get_state)
        return state
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise StackError(f"no transition {transition_id}") from None
        raise


@app.command()
def show(
    transition_id: str,
    as_json: bool = typer.Option(False, "--json", help="the raw state as JSON"),
) -> None:
    """One transition: steps, due times in local time, escalation level, and its timeline."""

    async def main(
        settings: Settings,
    ) -> tuple[TransitionState, PatientSummary | None, list[dict[str, Any]]]:
        from store import projection

        async with audited(
            settings,
            action="show",
            resource_type="transition",
            resource_id=transition_id,
            changes=False,
        ) as pool:
            state = await _state(settings, transition_id)
            patient = await _patient(pool, settings, state)
            return state, patient, await projection.timeline(pool, transition_id)

    state, patient, events = run_command(main)
    if as_json:
        shown = patient.model_dump(mode="json") if patient else None
        console.print_json(
            json.dumps(
                state.model_dump(mode="json") | {"patient": shown, "timeline": events},
                default=str,
            )
        )
        return
    print_patient(console, patient)
    print_state(console, state)
    print_care_plan(console, build_care_plan(state))
    console.print(timeline_table(annotated(events, state), site_zone()))


def _act(transition_id: str, update: str, request: BaseModel, done: str, key: str | None) -> None:
    """Run one step action (a workflow Update); a refusal prints the validator's message."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError, RPCStatusCode

    from workers.runtime.embedded import StackError
    from workers.runtime.temporal import update_id

    async def main(settings: Settings) -> None:
        by = getattr(request, "by", None)
        async with audited(
            settings, action=update, resource_type="transition", resource_id=transition_id, by=by
        ):
            handle = await _handle(settings, transition_id)
            try:
                await handle.execute_update(update, request, id=update_id(update, key))
            except WorkflowUpdateFailedError as exc:
                raise StackError(f"refused: {refusal(exc)}") from None
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    raise StackError(f"no running transition {transition_id}") from None
                raise
        console.print(done)

    run_command(main)


def _request(model: type[BaseModel], **fields: Any) -> BaseModel:
    try:
        return model(**fields)
    except ValidationError as exc:
        err_console.print(f"[red]error:[/] {field_errors(exc.errors()[:1])}")
        raise typer.Exit(1) from None


BY = typer.Option(..., "--by", envvar="CAREBRIDGE_USER", help="who acts")
KEY = typer.Option(
    None,
    "--idempotency-key",
    help="the same key again (a retried command) acts once and answers as the first time",
)


def _key(value: str | None) -> str | None:
    from workers.runtime.temporal import IDEMPOTENCY_KEY_PATTERN

    if value is not None and not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, value):
        raise typer.BadParameter("1-128 of A-Z a-z 0-9 . _ : -", param_hint="--idempotency-key")
    return value


@app.command()
def complete(
    transition_id: str,
    step: str,
    by: str = BY,
    outcome: str = typer.Option("done", "--outcome"),
    note: str | None = typer.Option(None, "--note"),
    complexity: Complexity | None = typer.Option(None, help="visit MDM complexity"),
    on: datetime | None = typer.Option(
        None, "--on", formats=["%Y-%m-%d"], help="the day it was done (a visit: its date)"
    ),
    idempotency_key: str | None = KEY,
) -> None:
    """Complete a step (a visit: with its date and the provider's MDM complexity)."""
    request = _request(
        CompleteStepRequest,
        step_id=step,
        by=by,
        outcome=outcome,
        note=note,
        complexity=complexity,
        occurred_on=on.date() if on else None,
    )
    _act(
        transition_id,
        "complete_step",
        request,
        f"{step} completed by {by} ({outcome})",
        _key(idempotency_key),
    )


@app.command()
def attempt(
    transition_id: str,
    step: str = typer.Argument("interactive_contact"),
    by: str = BY,
    result: AttemptResult = typer.Option(..., "--result"),
    note: str | None = typer.Option(None, "--note"),
    idempotency_key: str | None = KEY,
) -> None:
    """Record a contact attempt (reached completes the step)."""
    request = _request(AttemptRequest, step_id=step, by=by, result=result, note=note)
    _act(
        transition_id,
        "record_attempt",
        request,
        f"{step}: attempt {result.value} recorded",
        _key(idempotency_key),
    )


@app.command()
def snooze(
    transition_id: str,
    step: str,
    until: str = typer.Option(
        ...,
        "--until",
        help="ISO time, e.g. 2026-03-02T09:00: local to the transition's facility, or with "
        "an offset (-05:00)",
    ),
    by: str = BY,
    reason: str = typer.Option(..., "--reason"),
    idempotency_key: str | None = KEY,
) -> None:
    """Move a step's due time later, within the protocol's limit."""
    key = _key(idempotency_key)
    at = _instant(transition_id, until)
    request = _request(SnoozeRequest, step_id=step, by=by, until=at, reason=reason)
    _act(
        transition_id,
        "snooze",
        request,
        f"{step} snoozed until {at.isoformat()}",
        key,
    )


def _instant(transition_id: str, text: str) -> datetime:
    """`--until` as an instant: a time without an offset is read in the zone the transition
    is planned in (its facility's), asked of the workflow only then."""
    try:
        written: datetime | None = datetime.fromisoformat(text.strip())
    except ValueError:
        written = None  # parse_instant says what is wrong with it
    if written is not None and written.tzinfo is not None:
        return written

    async def zone_of(settings: Settings) -> ZoneInfo:
        state = await _state(settings, transition_id)
        return ZoneInfo(state.timezone) if state.timezone else site_zone()

    try:
        return parse_instant(text, run_command(zone_of) if written else ZoneInfo("UTC"))
    except ValueError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


@app.command()
def reassign(
    transition_id: str,
    step: str,
    to: str = typer.Option(..., "--to"),
    by: str = BY,
    reason: str | None = typer.Option(None, "--reason"),
    idempotency_key: str | None = KEY,
) -> None:
    """Give a step to someone else."""
    request = _request(ReassignRequest, step_id=step, by=by, to=to, reason=reason)
    _act(transition_id, "reassign", request, f"{step} reassigned to {to}", _key(idempotency_key))


@app.command()
def cancel(
    transition_id: str,
    step: str,
    by: str = BY,
    reason: str = typer.Option(..., "--reason"),
    idempotency_key: str | None = KEY,
) -> None:
    """Cancel a step, with a reason."""
    request = _request(CancelStepRequest, step_id=step, by=by, reason=reason)
    _act(transition_id, "cancel_step", request, f"{step} cancelled", _key(idempotency_key))


@app.command()
def note(
    transition_id: str,
    text: str,
    by: str = BY,
    step: str | None = typer.Option(None, "--step"),
    idempotency_key: str | None = KEY,
) -> None:
    """Add a note to a transition (or one of its steps)."""
    request = _request(NoteRequest, by=by, text=text, step_id=step)
    _act(transition_id, "add_note", request, "note added", _key(idempotency_key))


@app.command()
def report(
    kind: str = typer.Argument(..., help="tcm, trc, readmissions or social-needs"),
    start: datetime = typer.Option(..., "--from", formats=["%Y-%m-%d"]),
    end: datetime = typer.Option(..., "--to", formats=["%Y-%m-%d"]),
    facility: str | None = typer.Option(None),
    as_csv: bool = typer.Option(False, "--csv", help="rows as CSV on stdout"),
) -> None:
    """TCM, HEDIS TRC, 30-day readmissions or social needs for discharges between two dates."""
    from store import reports
    from store.db import create_pool
    from workers.runtime import embedded

    if kind not in reports.COLUMNS:
        known = ", ".join(reports.COLUMNS)
        err_console.print(f"[red]error:[/] unknown report {kind!r}: use one of {known}")
        raise typer.Exit(1)
    chosen: reports.ReportKind = kind

    async def main(settings: Settings) -> dict[str, Any]:
        library = load_library(settings.protocols_dir)
        pool = await create_pool(await embedded.database_url(settings), max_size=2)
        try:
            return await reports.report(pool, library, chosen, start.date(), end.date(), facility)
        finally:
            await pool.close()

    result = run_command(main)
    if as_csv:
        sys.stdout.write(reports.to_csv(chosen, result["rows"]))
        return
    table = Table(title=f"{kind} report {result['from']} .. {result['to']}")
    for column in reports.COLUMNS[chosen]:
        table.add_column(column)
    for row in result["rows"]:
        table.add_row(*(str(row[c]) for c in reports.COLUMNS[chosen]))
    console.print(table)
    for key, value in result["summary"].items():
        console.print(f"  {key}: {value}")
    if "excluded_cancelled" in result:
        console.print(f"  excluded (discharge cancelled): {result['excluded_cancelled']}")
