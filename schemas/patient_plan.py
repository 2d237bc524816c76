"""The care plan as the patient reads it on paper: what happens next and by when, in plain
words and in their language, with whom to call. It leaves out what is for the staff (step
owners, escalations, attempts outside the preferred hours, protocol names) and every
social-needs domain the patient has not both screened positive for and agreed to have
printed: a printed "interpersonal safety" line can put someone at risk at home.

The words are the template's (translatable); this module decides what is printed."""

from __future__ import annotations

from datetime import date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from schemas.languages import language_name, plan_language
from schemas.person import ContactWindow
from schemas.relationships import relationship_name
from schemas.site import Practice, SiteConfig
from schemas.social_needs import HrsnDomain, ReferralOutcome, Resource
from schemas.transition import StepState, StepStatus, TransitionState


class PatientStep(StrEnum):
    """What a step is for the patient; each has its sentences in the template."""

    CALL = "call"
    MEDICINES = "medicines"
    VISIT = "visit"
    CHECK_IN = "check_in"
    HOME_HEALTH = "home_health"
    QUESTIONS = "questions"


# The steps of the shipped protocols the patient takes part in. Other steps (handoffs,
# referrals sent, a site's own steps) are the staff's work and are not printed.
PATIENT_STEPS = {
    "interactive_contact": PatientStep.CALL,
    "medication_reconciliation": PatientStep.MEDICINES,
    "follow_up_visit": PatientStep.VISIT,
    "high_risk_check_in": PatientStep.CHECK_IN,
    "home_health_start_of_care": PatientStep.HOME_HEALTH,
    "social_needs_screening": PatientStep.QUESTIONS,
}
PRINTED_STATUSES = frozenset({StepStatus.OPEN, StepStatus.PENDING, StepStatus.COMPLETED})


class PlanItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    step: PatientStep
    by: date | None = None  # a deadline is a day: "by Thursday, December 3"
    at: datetime | None = None  # a booked appointment has its time
    done_on: date | None = None
    late: bool = False  # the day has passed and it is still to do: "soon", not a past date


class NeedItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    domain: HrsnDomain
    resources: tuple[Resource, ...] = ()


class CaregiverLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    relationship: str
    phone: str
    manages_medications: bool
    may_call: bool


class PatientPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    transition_id: str
    language: str
    patient_name: str = ""
    birth_date: date | None = None
    discharged_on: date
    period_ends_on: date | None = None
    practice: Practice
    business_hours: tuple[time, time]
    phone: str = ""
    discharged_to: str = ""
    language_name: str = ""
    interpreter_needed: bool = False
    contact_window: ContactWindow | None = None
    what_matters: str = ""
    items: tuple[PlanItem, ...] = ()
    needs: tuple[NeedItem, ...] = ()
    caregivers: tuple[CaregiverLine, ...] = ()


def shared_needs(state: TransitionState) -> tuple[HrsnDomain, ...]:
    """The domains that may be printed: screened positive and agreed to share, both."""
    if state.screening is None:
        return ()
    agreed = set(state.profile.needs_shared_on_plan)
    return tuple(domain for domain in state.screening.positive if domain in agreed)


def _item(
    step: StepState, kind: PatientStep, zone: ZoneInfo, now: datetime, booked: datetime | None
) -> PlanItem:
    if step.status == StepStatus.COMPLETED:
        done = step.completed_at.astimezone(zone).date() if step.completed_at else None
        return PlanItem(step=kind, done_on=done)
    if booked is not None:
        return PlanItem(step=kind, at=booked.astimezone(zone), late=booked < now)
    due = step.due_at.astimezone(zone).date() if step.due_at else None
    return PlanItem(step=kind, by=due, late=due is not None and due < now.astimezone(zone).date())


def _sort_key(item: PlanItem) -> tuple[int, date]:
    when = item.done_on or (item.at.date() if item.at else None) or item.by
    return (0 if item.done_on else 1, when or date.max)


def build_patient_plan(
    state: TransitionState,
    site: SiteConfig,
    *,
    now: datetime,
    language: str | None = None,
    patient_name: str = "",
    birth_date: date | None = None,
) -> PatientPlan:
    """`language` overrides the profile's (?lang=es). A step with a booked or confirmed
    appointment (a follow-up visit at 10:30, from the call outcome) prints its time instead
    of the deadline."""
    zone = ZoneInfo(state.timezone or site.calendar.timezone)
    profile = state.profile
    chosen = plan_language(language or profile.language)
    booked = {step.step_id: step.appointment_at for step in state.steps if step.appointment_at}
    items = [
        _item(step, PATIENT_STEPS[step.step_id], zone, now, booked.get(step.step_id))
        for step in state.steps
        if step.step_id in PATIENT_STEPS and step.status in PRINTED_STATUSES
    ]
    shared = shared_needs(state)
    needs = tuple(
        NeedItem(
            domain=domain,
            resources=tuple(
                referral.resource
                for referral in state.referrals
                if referral.domain == domain and referral.outcome == ReferralOutcome.CONNECTED
            ),
        )
        for domain in shared
    )
    numbers = state.contact_numbers or list(profile.phones)
    return PatientPlan(
        transition_id=state.transition_id,
        language=chosen,
        patient_name=patient_name,
        birth_date=birth_date,
        discharged_on=state.discharged_at.astimezone(zone).date(),
        period_ends_on=state.period_ends_at.astimezone(zone).date()
        if state.period_ends_at
        else None,
        practice=site.practice,
        business_hours=(site.calendar.business_day_start, site.calendar.business_day_end),
        # at a facility the patient is reached there, not on the home phone
        phone="" if profile.discharged_to else (numbers[0] if numbers else ""),
        discharged_to=profile.discharged_to,
        language_name=language_name(profile.language, chosen),
        interpreter_needed=profile.interpreter_needed,
        contact_window=profile.contact_window,
        what_matters=profile.goals_of_care,
        items=tuple(sorted(items, key=_sort_key)),
        needs=needs,
        caregivers=tuple(
            CaregiverLine(
                name=caregiver.name,
                relationship=relationship_name(caregiver.relationship, chosen),
                phone=caregiver.phone,
                manages_medications=caregiver.manages_medications,
                may_call=caregiver.consent_to_contact,
            )
            for caregiver in profile.caregivers
        ),
    )
