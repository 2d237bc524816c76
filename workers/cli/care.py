"""A care manager's commands beyond the step actions: own a transition (claim, assign), the
team's load (team), record a call's outcome (call), correct a completed step (correct),
and what the web pages' care plan records: the screening (screen), a referral (refer) and
the profile (profile). Each is a workflow Update, audited like the others."""

from __future__ import annotations

import json
from datetime import datetime, time
from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError
from rich.table import Table

from schemas.call import AppointmentStatus, Reached, RedFlag
from schemas.person import ContactChannel, ContactWindow, PersonProfile
from schemas.protocol_library import load_library
from schemas.sentences import refusal
from schemas.social_needs import HrsnAnswers, ReferralOutcome
from schemas.transition import (
    AssignRequest,
    CallOutcomeRequest,
    Complexity,
    CorrectionRequest,
    ProfileRequest,
    ReferralRequest,
    ScreeningRequest,
)
from workers.cli.app import app, console, err_console, run_command, site_zone
from workers.cli.audit_trail import audited
from workers.cli.transitions import BY, KEY, _act, _handle, _instant, _key, _request, _state
from workers.cli.views import local
from workers.runtime.settings import Settings, get_settings


def _when(transition_id: str, value: str | None) -> datetime | None:
    """A typed time (--at, --appointment) read as snooze --until reads it: without an offset,
    local to the transition's facility; refused when the clocks skip it."""
    return _instant(transition_id, value) if value is not None else None


@app.command()
def claim(transition_id: str, by: str = BY, idempotency_key: str | None = KEY) -> None:
    """Take a transition as your own (my patients); refused when someone else owns it."""
    request = _request(AssignRequest, by=by, to=by)
    _act(transition_id, "assign_transition", request, f"{by} owns it", _key(idempotency_key))


@app.command()
def assign(
    transition_id: str,
    to: str = typer.Option(..., "--to", help="the care manager who will own it"),
    by: str = BY,
    idempotency_key: str | None = KEY,
) -> None:
    """Give a transition to a care manager (a supervisor's action; the same owner again
    changes nothing)."""
    request = _request(AssignRequest, by=by, to=to, supervisor=True)
    _act(transition_id, "assign_transition", request, f"{to} owns it", _key(idempotency_key))


@app.command("team")
def team_view(
    team_name: str | None = typer.Option(None, "--team", help="one care team"),
) -> None:
    """Each care manager's open transitions, overdue and due today first, and today's calls."""

    async def main(settings: Settings) -> list[Any]:
        from store import team

        async with audited(
            settings, action="team", resource_type="team", resource_id=team_name, changes=False
        ) as pool:
            return await team.overview(pool, site_zone(), team_name)

    loads = run_command(main)
    table = Table(title="team")
    for column in ("owner", "open", "overdue", "due today", "calls due", "calls made"):
        table.add_column(column)
    for load in loads:
        table.add_row(
            load.owner or "(nobody yet)",
            str(load.open),
            str(load.overdue),
            str(load.due_today),
            str(load.calls_due_today),
            str(load.calls_made_today),
        )
    console.print(table)
    zone = site_zone()
    for load in loads:
        for row in load.rows:
            due = local(row["next_due_at"], zone)
            overdue = f" overdue: {', '.join(row['overdue_steps'])}" if row["overdue_steps"] else ""
            console.print(
                f"  {load.owner or '(nobody)'}  {row['transition_id']}  {row['current_step'] or ''}"
                f"  {due}{overdue}"
            )


@app.command()
def call(
    transition_id: str,
    step: str = typer.Argument("interactive_contact"),
    by: str = BY,
    reached: Reached = typer.Option(..., "--reached", help="patient, caregiver or nobody"),
    left_message: bool = typer.Option(False, "--left-message"),
    wrong_number: bool = typer.Option(False, "--wrong-number"),
    at: str | None = typer.Option(
        None, "--at", help="when (ISO; default now; without an offset, the facility's local time)"
    ),
    medication_problems: bool | None = typer.Option(
        None, "--medication-problems/--no-medication-problems"
    ),
    medication_notes: str | None = typer.Option(None, "--medication-notes"),
    appointment: str | None = typer.Option(
        None, "--appointment", help="ISO date and time (as --at)"
    ),
    appointment_status: AppointmentStatus = typer.Option(
        AppointmentStatus.BOOKED, "--appointment-status"
    ),
    red_flag: list[RedFlag] = typer.Option([], "--red-flag", help="repeat for each symptom"),
    social_needs: bool | None = typer.Option(None, "--social-needs/--no-social-needs"),
    note: str | None = typer.Option(None, "--note"),
    idempotency_key: str | None = KEY,
) -> None:
    """Record an outreach call's outcome: whom it reached, what was learned. Reaching the
    patient or caregiver completes the call step; red flags notify a clinician now."""
    request = _request(
        CallOutcomeRequest,
        step_id=step,
        by=by,
        at=_when(transition_id, at),
        reached=reached,
        left_message=left_message,
        wrong_number=wrong_number,
        medication_problems=medication_problems,
        medication_notes=medication_notes,
        appointment_at=_when(transition_id, appointment),
        appointment_status=appointment_status,
        red_flags=tuple(red_flag),
        social_needs=social_needs,
        note=note,
    )
    assert isinstance(request, CallOutcomeRequest)
    _act(
        transition_id,
        "record_call",
        request,
        f"{step}: call recorded ({request.summary})",
        _key(idempotency_key),
    )


@app.command()
def correct(
    transition_id: str,
    step: str = typer.Argument("follow_up_visit"),
    by: str = BY,
    on: datetime | None = typer.Option(None, "--on", formats=["%Y-%m-%d"], help="its day"),
    complexity: Complexity | None = typer.Option(None, help="the visit's MDM complexity"),
    reason: str = typer.Option(..., "--reason"),
    idempotency_key: str | None = KEY,
) -> None:
    """Correct a completed step (a supervisor's action): its day, the visit's complexity."""
    request = _request(
        CorrectionRequest,
        step_id=step,
        by=by,
        occurred_on=on.date() if on else None,
        complexity=complexity,
        reason=reason,
    )
    _act(transition_id, "correct_step", request, f"{step} corrected", _key(idempotency_key))


def _answers(pairs: list[str], file: Path | None) -> HrsnAnswers:
    raw: dict[str, Any] = json.loads(file.read_text()) if file else {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r}: write question=answer", param_hint="--answer")
        many = name == "housing_problems"
        raw[name] = [v for v in value.split(",") if v] if many else value
    try:
        return HrsnAnswers.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        err_console.print(f"[red]error:[/] {where}: {first['msg']}")
        raise typer.Exit(1) from None


@app.command()
def screen(
    transition_id: str,
    step: str = typer.Argument("social_needs_screening"),
    by: str = BY,
    answer: list[str] = typer.Option(
        [], "--answer", help="question=answer, e.g. living_situation=steady_place"
    ),
    answers_file: Path | None = typer.Option(None, "--answers", help="the answers as JSON"),
    idempotency_key: str | None = KEY,
) -> None:
    """Record the social needs screening (AHC HRSN core questions); positive domains open
    their referral steps."""
    request = _request(
        ScreeningRequest, step_id=step, by=by, answers=_answers(answer, answers_file)
    )
    _act(
        transition_id,
        "record_screening",
        request,
        f"{step}: screening recorded",
        _key(idempotency_key),
    )


@app.command()
def refer(
    transition_id: str,
    step: str,
    by: str = BY,
    resource: str = typer.Option(..., "--resource", help="an id from the resource directory"),
    outcome: ReferralOutcome = typer.Option(..., "--outcome"),
    note: str | None = typer.Option(None, "--note"),
    idempotency_key: str | None = KEY,
) -> None:
    """Close a resource referral with the resource used and what came of it."""
    library = load_library(get_settings().protocols_dir)
    try:
        found = library.resource(resource)
    except KeyError:
        err_console.print(f"[red]error:[/] no resource {resource!r} in the directory")
        raise typer.Exit(1) from None
    request = _request(
        ReferralRequest, step_id=step, by=by, resource=found, outcome=outcome, note=note
    )
    _act(
        transition_id, "close_referral", request, f"{step}: referral closed", _key(idempotency_key)
    )


def _window(value: str) -> ContactWindow | None:
    if value in ("", "none"):
        return None
    start, _, end = value.partition("-")
    try:
        return ContactWindow(start=time.fromisoformat(start), end=time.fromisoformat(end))
    except (ValueError, ValidationError):
        raise typer.BadParameter(
            f"{value!r}: write HH:MM-HH:MM (or none)", param_hint="--window"
        ) from None


def _edited(
    profile: PersonProfile,
    *,
    language: str | None,
    interpreter: bool | None,
    window: ContactWindow | bool | None,
    channel: ContactChannel | None,
    goals: str | None,
    consent: list[str],
    no_consent: list[str],
) -> PersonProfile:
    """The profile with the fields given changed (consent by caregiver name)."""
    from workers.runtime.embedded import StackError

    known = {c.name for c in profile.caregivers}
    unknown = sorted(set(consent + no_consent) - known)
    if unknown:
        names = ", ".join(sorted(known)) or "none"
        raise StackError(f"no caregiver named {', '.join(unknown)}; the caregivers are: {names}")
    caregivers = tuple(
        c.model_copy(
            update={"consent_to_contact": c.name in consent}
            if c.name in consent or c.name in no_consent
            else {}
        )
        for c in profile.caregivers
    )
    changes: dict[str, Any] = {"caregivers": caregivers}
    if language is not None:
        changes["language"] = language
    if interpreter is not None:
        changes["interpreter_needed"] = interpreter
    if window is not False:  # False: not given; None: no window
        changes["contact_window"] = window
    if channel is not None:
        changes["preferred_channel"] = channel
    if goals is not None:
        changes["goals_of_care"] = goals
    return PersonProfile.model_validate(profile.model_dump() | changes)


@app.command()
def profile(
    transition_id: str,
    by: str = BY,
    language: str | None = typer.Option(None, "--language"),
    interpreter: bool | None = typer.Option(None, "--interpreter/--no-interpreter"),
    window: str | None = typer.Option(None, "--window", help="best hours HH:MM-HH:MM, or none"),
    channel: ContactChannel | None = typer.Option(None, "--channel"),
    goals: str | None = typer.Option(None, "--goals", help="what matters to them"),
    consent: list[str] = typer.Option([], "--consent", help="a caregiver who may be called"),
    no_consent: list[str] = typer.Option([], "--no-consent", help="one who may not"),
    idempotency_key: str | None = KEY,
) -> None:
    """Change the person's profile: language, interpreter, contact hours and channel, what
    matters to them, and the caregivers the patient agreed may be called."""
    new_window = _window(window) if window is not None else False  # checked before reading

    async def main(settings: Settings) -> None:
        from temporalio.client import WorkflowUpdateFailedError

        from workers.runtime.embedded import StackError
        from workers.runtime.temporal import update_id
        from workflows.transition import TransitionWorkflow

        async with audited(
            settings,
            action="update_profile",
            resource_type="transition",
            resource_id=transition_id,
            by=by,
        ):
            current = (await _state(settings, transition_id)).profile
            edited = _edited(
                current,
                language=language,
                interpreter=interpreter,
                window=new_window,
                channel=channel,
                goals=goals,
                consent=consent,
                no_consent=no_consent,
            )
            try:
                request = ProfileRequest(by=by, profile=edited)
            except ValidationError as exc:
                raise StackError(f"invalid profile: {exc.errors()[0]['msg']}") from None
            handle = await _handle(settings, transition_id)
            name = "update_profile"
            try:
                await handle.execute_update(
                    TransitionWorkflow.update_profile,
                    request,
                    id=update_id(name, _key(idempotency_key)),
                )
            except WorkflowUpdateFailedError as exc:
                raise StackError(f"refused: {refusal(exc)}") from None
        console.print("profile updated")

    run_command(main)
