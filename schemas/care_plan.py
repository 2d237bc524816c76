"""One readable care plan per transition, built from the workflow's live state: the same view
for the API, `carebridge show` and the printable web page. Times are in the site's zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from schemas.call import is_call_step
from schemas.languages import language_name
from schemas.person import Caregiver, PersonProfile
from schemas.protocol import StepKind
from schemas.social_needs import DOMAIN_TITLES, HrsnDomain, Referral
from schemas.transition import StepState, StepStatus, TransitionState


class PlannedAttempt(BaseModel):
    at: datetime
    by: str
    result: str
    outside_contact_window: bool


class Reach(BaseModel):
    """How an outreach step reaches the person: the numbers to call, in which language, when,
    and the caregivers the patient agreed may be called."""

    numbers: list[str]
    language: str
    language_name: str = Field(default="", description="the language in words: Spanish")
    interpreter_needed: bool
    window: str | None
    caregivers: list[Caregiver]
    discharged_to: str = Field(
        default="", description="discharged to a facility (PV1-37): reached there, not at home"
    )


class PlannedStep(BaseModel):
    step_id: str
    title: str
    kind: StepKind = StepKind.HUMAN_TASK
    referral_for: HrsnDomain | None = None
    owner: str = ""
    status: str
    due_at: datetime | None = None
    overdue: bool = False
    outcome: str | None = None
    attempts: list[PlannedAttempt] = []
    reach: Reach | None = None
    appointment_at: datetime | None = Field(default=None, description="a booked visit's time")
    appointment_with: str | None = None
    appointment_where: str | None = None


def reach_of(state: TransitionState) -> Reach:
    profile = state.profile
    window = profile.contact_window
    return Reach(
        # an A08's numbers are newer than the discharge's
        numbers=list(state.contact_numbers or profile.phones),
        language=profile.language,
        language_name=language_name(profile.language),
        interpreter_needed=profile.interpreter_needed,
        window=f"{window.start:%H:%M}-{window.end:%H:%M}" if window else None,
        caregivers=list(profile.contactable_caregivers),
        discharged_to=profile.discharged_to,
    )


class Barrier(BaseModel):
    domain: HrsnDomain
    title: str
    referral_status: str


class CarePlan(BaseModel):
    transition_id: str
    status: str
    timezone: str
    discharged_at: datetime
    period_ends_at: datetime | None
    goals: list[str]
    what_matters: str
    steps: list[PlannedStep]
    screened: bool
    barriers: list[Barrier]
    resources_connected: list[Referral]
    profile: PersonProfile
    caregivers: list[Caregiver]
    phones: list[str] = Field(default=[], description="the patient's own numbers, newest first")


def _planned_step(
    step: StepState, profile: PersonProfile, zone: ZoneInfo, reach: Reach
) -> PlannedStep:
    window = profile.contact_window
    return PlannedStep(
        step_id=step.step_id,
        title=step.title,
        kind=step.kind,
        referral_for=step.referral_for,
        owner=step.assignee or step.owner_role.replace("_", " "),
        status=step.status.value,
        due_at=step.due_at.astimezone(zone) if step.due_at else None,
        overdue=step.overdue_since is not None and not step.is_terminal,
        outcome=step.outcome,
        appointment_at=step.appointment_at.astimezone(zone) if step.appointment_at else None,
        appointment_with=step.appointment_with,
        appointment_where=step.appointment_where,
        attempts=[
            PlannedAttempt(
                at=attempt.at.astimezone(zone),
                by=attempt.by,
                result=attempt.result.value,
                # allowed, but flagged: the patient asked to be called at other times
                outside_contact_window=bool(
                    window and not window.contains(attempt.at.astimezone(zone).time())
                ),
            )
            for attempt in step.attempts
        ],
        reach=reach if is_call_step(step.kind, step.owner_role) else None,
    )


def build_care_plan(state: TransitionState) -> CarePlan:
    zone = ZoneInfo(state.timezone or "UTC")
    profile = state.profile
    reach = reach_of(state)
    steps = [
        _planned_step(step, profile, zone, reach)
        for step in state.steps
        if step.status != StepStatus.NOT_NEEDED
    ]
    goals = [
        f"{step.title}: by {step.due_at.astimezone(zone):%a %b %d}" if step.due_at else step.title
        for step in state.steps
        if step.kind != StepKind.REFERRAL and step.status in (StepStatus.OPEN, StepStatus.PENDING)
    ]
    referral_status = {
        step.referral_for: step.status.value for step in state.steps if step.referral_for
    }
    barriers = [
        Barrier(
            domain=domain,
            title=DOMAIN_TITLES[domain],
            referral_status=referral_status.get(domain, "no referral step"),
        )
        for domain in (state.screening.positive if state.screening else ())
    ]
    return CarePlan(
        transition_id=state.transition_id,
        status=state.status.value,
        timezone=zone.key,
        discharged_at=state.discharged_at.astimezone(zone),
        period_ends_at=state.period_ends_at.astimezone(zone) if state.period_ends_at else None,
        goals=goals,
        what_matters=profile.goals_of_care,
        steps=steps,
        screened=state.screening is not None,
        barriers=barriers,
        resources_connected=list(state.referrals),
        profile=profile,
        caregivers=list(profile.caregivers),
        phones=reach.numbers,
    )
