"""Rich renderings shared by the CLI commands: transitions, plans, protocols."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from schemas.care_plan import CarePlan
from schemas.diagnoses import diagnosis_title
from schemas.languages import language_name
from schemas.protocol import DueRule, Protocol
from schemas.relationships import relationship_name
from schemas.risk import RiskAssessment
from schemas.site import SiteConfig
from schemas.timeline import call_details
from schemas.transition import StepState, TransitionPlan, TransitionState
from schemas.worklist import Bucket, PatientSummary


def local(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%a %Y-%m-%d %H:%M") if value else ""


def describe_rule(rule: DueRule) -> str:
    unit = rule.unit.value.replace("_", " ")
    if rule.amount == 1:
        unit = unit.removesuffix("s")  # "1 business day"
    return f"{rule.amount} {unit} after {rule.after or 'discharge'}"


def risk_line(risk: RiskAssessment) -> str:
    parts = (
        f"L{risk.length_of_stay_points} A{risk.acute_points} "
        f"C{risk.comorbidity_points} E{risk.ed_points}"
    )
    notes = f"  ({'; '.join(risk.notes)})" if risk.notes else ""
    return f"risk {risk.tier.value}: LACE {risk.lace} = {parts}{notes}"


def due_now(row: dict[str, Any], zone: ZoneInfo) -> str:
    """Every step of a worklist row that is overdue or due on the day, most urgent first."""
    shown = []
    for step in row.get("due_steps") or ():
        if step["bucket"] == Bucket.LATER:
            continue
        if step["missed_before_arrival"]:
            text = f"{step['step_id']} (missed before arrival)"
        elif step["bucket"] == Bucket.OVERDUE:
            text = f"{step['step_id']} (overdue)"
        else:
            text = f"{step['step_id']} (today {step['due_at'].astimezone(zone):%H:%M})"
        if step["escalation_level"]:
            text += f" L{step['escalation_level']}"
        shown.append(text + (" TCM" if step["tcm"] else ""))
    return ", ".join(shown)


def who(patient: PatientSummary | None) -> str:
    """A worklist cell: name, age and sex; MRN and phone; PCP."""
    if patient is None:
        return "(not in the registry)"
    lines = [", ".join(p for p in (patient.name or "(no name)", patient.age_and_sex) if p)]
    lines.append(
        " · ".join(p for p in (f"MRN {patient.mrn}" if patient.mrn else "", patient.phone) if p)
    )
    if patient.merged_mrns:
        lines.append(f"merged from MRN {', '.join(patient.merged_mrns)}")
    if patient.pcp:
        lines.append(f"PCP {patient.pcp}")
    return "\n".join(line for line in lines if line)


def stay(patient: PatientSummary | None) -> str:
    """A worklist cell: the principal diagnosis, the unit and the length of stay."""
    if patient is None:
        return ""
    diagnosis = " ".join(p for p in (patient.diagnosis, patient.diagnosis_text) if p)
    days = patient.length_of_stay_days
    where = " · ".join(p for p in (patient.unit, f"{days} day(s)" if days is not None else "") if p)
    return "\n".join(line for line in (diagnosis, where) if line)


def transitions_table(rows: list[dict[str, Any]], site: SiteConfig) -> Table:
    """One row per transition: who the patient is, the stay, the transition's facts, the
    steps due now; times in its facility's zone."""
    table = Table(title=f"{len(rows)} transition(s)")
    for column in ("patient", "stay", "transition", "team", "risk", "discharged"):
        table.add_column(column)
    table.add_column("due now", style="red")
    for column in ("next step", "next due", "level"):
        table.add_column(column)
    for row in rows:
        zone = site.zone_for(row["facility"])
        patient = row.get("patient")
        table.add_row(
            who(patient),
            stay(patient),
            f"{row['transition_id']}\n{row['facility']} {row['protocol_id']} {row['status']}"
            + (f"\nowner {row['owner']}" if row.get("owner") else ""),
            row.get("team") or row["facility"],
            f"{row['risk_tier']} ({row['lace']})",
            local(row["discharged_at"], zone),
            due_now(row, zone),
            row["current_step"] or "",
            local(row["next_due_at"], zone),
            str(row["escalation_level"] or ""),
        )
    return table


def print_patient(console: Console, patient: PatientSummary | None) -> None:
    """Who the transition's patient is, above its state (PHI: `show` is audited)."""
    if patient is None:
        console.print("patient: not in the registry")
        return
    console.print(f"[bold]{who(patient).replace(chr(10), '  ')}[/]")
    if facts := stay(patient):
        console.print(facts.replace("\n", "  "))


def print_state(console: Console, state: TransitionState) -> None:
    zone = ZoneInfo(state.timezone or "UTC")
    console.print(
        f"[bold]{state.transition_id}[/]  {state.status.value}  facility {state.facility}  "
        f"protocol {state.protocol_id} v{state.protocol_version}"
    )
    console.print(
        f"discharged {local(state.discharged_at, zone)} ({zone.key}); period ends "
        f"{local(state.period_ends_at, zone)}; {risk_line(state.risk)}"
    )
    if state.risk.diagnosis_codes:
        console.print(
            "diagnoses: "
            + "; ".join(f"{diagnosis_title(c)} ({c})" for c in state.risk.diagnosis_codes)
        )
    if state.received_at and any(step.missed_before_arrival for step in state.steps):
        console.print(f"arrived late: received {local(state.received_at, zone)}")
    if state.owner:
        console.print(f"owner {state.owner} since {local(state.owner_since, zone)}")
    else:
        console.print("owner: nobody yet (carebridge claim / assign)")
    table = Table()
    for column in (
        "step",
        "status",
        "due",
        "level",
        "attempts",
        "assignee",
        "done",
        "by",
        "outcome",
    ):
        table.add_column(column)
    for step in state.steps:
        table.add_row(
            step.step_id,
            step.status.value
            + (" (overdue)" if step.overdue_since and not step.is_terminal else "")
            + (" (missed before arrival)" if step.missed_before_arrival else ""),
            local(step.due_at, zone),
            str(step.escalation_level or ""),
            ", ".join(a.result.value for a in step.attempts),
            step.assignee or "",
            local(step.completed_at, zone),
            step.completed_by or "",
            _step_outcome(step, zone),
        )
    console.print(table)
    print_activity(console, state, zone)
    if state.outcome:
        tcm = state.outcome.tcm
        verdict = tcm.code or ("not eligible" if tcm.applicable else "not applicable")
        console.print(f"outcome: {state.outcome.status.value} ({state.outcome.reason})")
        console.print(f"  TCM {verdict}: {'; '.join(tcm.reasons)}")
        trc = state.outcome.trc
        console.print(
            f"  HEDIS TRC: discharge information {trc.discharge_information}, patient "
            f"engagement {trc.patient_engagement}, medication reconciliation "
            f"{trc.medication_reconciliation}"
        )


def _step_outcome(step: StepState, zone: ZoneInfo) -> str:
    """A step's outcome, its appointment, and what calls found for it."""
    lines = [step.outcome or step.cancel_reason or ""]
    if step.complexity:
        lines[0] += f" ({step.complexity.value} complexity)"
    if step.appointment_at and step.appointment_status:
        status = step.appointment_status.value
        lines.append(f"appointment {status} {local(step.appointment_at, zone)}")
    lines += [f"call {local(e.at, zone)}: {e.finding}" for e in step.evidence]
    lines += [f"corrected by {c.by}: {c.changes}" for c in step.corrections]
    return "\n".join(line for line in lines if line)


def print_activity(console: Console, state: TransitionState, zone: ZoneInfo) -> None:
    """The calls and notes of a transition, in the order they were recorded."""
    for call in state.calls:
        when = local(call.at, zone)
        console.print(f"call {when} {call.step_id} by {call.by}: {call_details(call)}")
    for note in state.notes:
        step = f" ({note.step_id})" if note.step_id else ""
        console.print(f"note {local(note.at, zone)} by {note.by}{step}: {note.text}")


def print_plan(
    console: Console,
    protocol: Protocol,
    reason: str,
    risk: RiskAssessment,
    plan: TransitionPlan,
    discharged_at: datetime,
) -> None:
    zone = ZoneInfo(plan.timezone)
    console.print(f"[bold]{protocol.id} v{protocol.version}[/]: {protocol.title}  ({reason})")
    console.print(f"discharged {local(discharged_at, zone)} ({plan.timezone}); {risk_line(risk)}")
    console.print(f"period ends {local(plan.period_ends_at, zone)}; calendar {plan.calendar}")
    scheduled = {s.step_id: s for s in plan.steps}
    table = Table()
    for column in ("step", "owner", "due", "snooze limit", "escalations"):
        table.add_column(column)
    for rule in protocol.steps:
        if not rule.applies_to(risk.tier):
            continue
        schedule = scheduled.get(rule.id)
        if schedule is None:
            table.add_row(rule.id, rule.owner_role, describe_rule(rule.due_for(risk.tier)), "", "")
            continue
        ladder = "\n".join(
            f"L{e.level} {e.role}/{e.channel} {local(e.at, zone)}" for e in schedule.escalations
        )
        table.add_row(
            rule.id,
            rule.owner_role,
            local(schedule.due_at, zone),
            local(schedule.limit_at, zone),
            ladder,
        )
    console.print(table)


def protocols_table(protocols: list[Protocol]) -> Table:
    table = Table(title="protocols")
    for column in ("protocol", "version", "TCM", "steps (due)"):
        table.add_column(column)
    for protocol in protocols:
        steps = "\n".join(
            f"{rule.id}: {describe_rule(rule.due)}"
            + (f" (high risk: {describe_rule(rule.high_risk_due)})" if rule.high_risk_due else "")
            + (f" [{', '.join(t.value for t in rule.tiers)} only]" if rule.tiers else "")
            for rule in protocol.steps
        )
        table.add_row(
            protocol.id,
            str(protocol.version),
            "yes" if protocol.tcm else "no",
            steps or f"none: closes as {protocol.closes_with}",
        )
    return table


def messages_table(rows: list[dict[str, Any]], zone: ZoneInfo) -> Table:
    table = Table(title=f"{len(rows)} message(s)")
    for column in ("id", "received", "facility", "control id", "type", "status", "ack"):
        table.add_column(column)
    table.add_column("decision / error")
    for row in rows:
        table.add_row(
            str(row["id"])
            + (f" (of {row['reprocessed_from']})" if row["reprocessed_from"] else ""),
            local(row["received_at"], zone),
            row["sending_facility"] or "",
            row["control_id"] or "",
            row["message_type"] or "",
            row["status"],
            row["ack_code"] or "",
            row["decision"] if row["status"] != "rejected" else row["error"] or "",
        )
    return table


def timeline_table(events: list[dict[str, Any]], zone: ZoneInfo) -> Table:
    table = Table(title="timeline")
    for column in ("#", "when", "what", "step", "by", "detail"):
        table.add_column(column)
    for event in events:
        table.add_row(
            str(event["seq"] % 1_000_000),
            local(event["at"], zone),
            event["kind"],
            event["step_id"] or "",
            event["actor"] or "",
            event["detail"],
        )
    return table


def print_care_plan(console: Console, plan: CarePlan) -> None:
    """The care plan section of `carebridge show`: what the patient or caregiver is told."""
    console.print("\n[bold]Care plan[/]")
    profile = plan.profile
    language = language_name(profile.language) or "not recorded"
    if profile.interpreter_needed:
        language += " (interpreter needed)"
    console.print(f"  language: {language}")
    if profile.discharged_to:
        console.print(f"  staying at: {profile.discharged_to} (discharged there)")
    elif plan.phones:
        console.print(f"  phone: {', '.join(plan.phones)}")
    if profile.preferred_channel or profile.contact_window:
        window = profile.contact_window
        console.print(
            f"  contact: {profile.preferred_channel or 'any channel'}"
            + (f", {window.start:%H:%M}-{window.end:%H:%M}" if window else "")
        )
    for caregiver in plan.caregivers:
        consent = "may be contacted" if caregiver.consent_to_contact else "no consent recorded"
        console.print(
            f"  caregiver: {caregiver.name} "
            f"({relationship_name(caregiver.relationship) or 'relationship ?'}) "
            f"{caregiver.phone} - {consent}"
        )
    if plan.what_matters:
        console.print(f"  what matters to them: {plan.what_matters}")
    for goal in plan.goals:
        console.print(f"  goal: {goal}")
    if not plan.screened:
        console.print("  social needs: not screened yet")
    for barrier in plan.barriers:
        console.print(f"  barrier: {barrier.title} (referral {barrier.referral_status})")
    for referral in plan.resources_connected:
        console.print(
            f"  resource: {referral.resource.name} ({referral.domain.value}) - "
            f"{referral.outcome.value}; {referral.resource.contact}"
        )
    flagged = [
        (step.step_id, attempt)
        for step in plan.steps
        for attempt in step.attempts
        if attempt.outside_contact_window
    ]
    for step_id, attempt in flagged:
        console.print(
            f"  [yellow]attempt outside the preferred window:[/] {step_id} "
            f"{attempt.at:%a %H:%M} by {attempt.by}"
        )
