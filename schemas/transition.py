"""A care transition: its input, its plan (due times), its live state, the operator actions
(workflow Updates), the ADT events it reacts to (signals) and its 30-day outcome."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.call import AppointmentStatus, CallFindings, CallRecord, Evidence
from schemas.feed import Appointment
from schemas.person import EMPTY_PROFILE, PersonProfile
from schemas.protocol import Protocol, RiskTier, StepKind, StepRule, TcmElement
from schemas.risk import STANDARD_RISK, RiskAssessment
from schemas.site import CalendarConfig, OutcomePolicy, Transport
from schemas.social_needs import (
    HrsnAnswers,
    HrsnDomain,
    Referral,
    ReferralOutcome,
    Resource,
    Screening,
)


class TransitionStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"  # the transition period ended
    CANCELLED = "cancelled"  # the discharge was cancelled (A13/A11)
    DECEASED = "deceased"
    TERMINATED = "terminated"  # ended by an operator in Temporal (found by the sweep)
    FAILED = "failed"  # the workflow failed or timed out (found by the sweep)


class StepStatus(StrEnum):
    PENDING = "pending"  # waiting for prerequisites
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"  # by an operator, with a reason
    STOPPED = "stopped"  # outreach stopped: readmission, death, cancelled discharge, period end
    NOT_NEEDED = "not_needed"  # a referral whose domain screened negative


TERMINAL_STEP_STATUSES = frozenset(
    {StepStatus.COMPLETED, StepStatus.CANCELLED, StepStatus.STOPPED, StepStatus.NOT_NEEDED}
)


class AttemptResult(StrEnum):
    REACHED = "reached"
    NO_ANSWER = "no_answer"
    LEFT_MESSAGE = "left_message"
    WRONG_NUMBER = "wrong_number"


class Complexity(StrEnum):
    """Medical decision making at the face-to-face visit (99496 needs high)."""

    MODERATE = "moderate"
    HIGH = "high"


class TransitionInput(BaseModel):
    """What the workflow starts with. Opaque keys only in ids; PHI stays in payloads."""

    model_config = ConfigDict(frozen=True)

    transition_id: str
    encounter_key: str = Field(description="HMAC of sending facility + visit number")
    facility: str
    discharged_at: AwareDatetime
    received_at: AwareDatetime | None = Field(
        default=None,
        description="when the intake received the discharge: a step due before it was missed "
        "before arrival (no escalation); None (a direct start) = no step is",
    )
    admitted_at: AwareDatetime | None = None
    patient_class: str = ""
    discharge_disposition: str = ""
    message_control_id: str = ""
    generation: int = Field(
        default=1, ge=1, description="2 and up: a new discharge after a cancelled one (A13)"
    )
    patient_key: str = Field(default="", description="HMAC of the chosen PID-3 identifier")
    protocol: Protocol
    risk: RiskAssessment = STANDARD_RISK
    calendar: CalendarConfig = CalendarConfig()
    policy: OutcomePolicy = OutcomePolicy()
    profile: PersonProfile = Field(
        default=EMPTY_PROFILE, description="language, numbers, caregivers from the ADT. PHI"
    )
    channel_transports: dict[str, Transport] | None = Field(
        default=None,
        description="how each ladder channel is delivered, fixed when the transition starts "
        "(like its protocol and calendar): a worklist one is an outbox row written in the "
        "workflow task, the others are remote activities; None (recorded before) = by name",
    )


class ScheduledEscalation(BaseModel):
    model_config = ConfigDict(frozen=True)

    level: int
    role: str
    channel: str
    at: AwareDatetime


class StepSchedule(BaseModel):
    """A step's due instant, snooze limit and escalation instants, computed by an activity."""

    model_config = ConfigDict(frozen=True)

    step_id: str
    due_at: AwareDatetime
    limit_at: AwareDatetime
    escalations: tuple[ScheduledEscalation, ...] = ()


class PlanRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    discharged_at: AwareDatetime
    protocol: Protocol
    tier: RiskTier = RiskTier.STANDARD
    calendar: CalendarConfig = CalendarConfig()


class TransitionPlan(BaseModel):
    """Due times computed once, in an activity, and carried by the workflow from then on."""

    model_config = ConfigDict(frozen=True)

    timezone: str
    calendar: str = Field(description="Business-day calendar and its version")
    period_ends_at: AwareDatetime
    steps: tuple[StepSchedule, ...] = Field(
        description="steps due from the discharge; steps anchored on another step come later"
    )


class ScheduleStepRequest(BaseModel):
    """Schedule one step from an anchor (a prerequisite's completion), or re-schedule it to a
    snoozed due time."""

    model_config = ConfigDict(frozen=True)

    rule: StepRule
    anchor_at: AwareDatetime
    tier: RiskTier = RiskTier.STANDARD
    calendar: CalendarConfig = CalendarConfig()
    due_override: AwareDatetime | None = None
    limit_at: AwareDatetime | None = None


class Attempt(BaseModel):
    at: AwareDatetime
    by: str
    result: AttemptResult
    note: str | None = None


class Correction(BaseModel):
    """A supervisor's correction of a completed step: what changed (old -> new) and why."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    by: str
    changes: str
    reason: str


class StepState(BaseModel):
    step_id: str
    title: str
    kind: StepKind
    owner_role: str
    assignee: str | None = None
    status: StepStatus = StepStatus.OPEN
    due_at: AwareDatetime | None = None
    limit_at: AwareDatetime | None = None
    escalations: list[ScheduledEscalation] = []
    escalation_level: int = 0
    overdue_since: AwareDatetime | None = None
    missed_before_arrival: bool = Field(
        default=False, description="its deadline had passed when the discharge arrived"
    )
    snoozed_until: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None
    completed_by: str | None = None
    outcome: str | None = None
    complexity: Complexity | None = None
    note: str | None = None
    cancel_reason: str | None = None
    attempts: list[Attempt] = []
    referral_for: HrsnDomain | None = None
    tcm_element: TcmElement | None = Field(
        default=None, description="what the step proves for TCM (the visit: its day, its MDM)"
    )
    evidence: list[Evidence] = Field(
        default=[], description="what calls found for this step (medicines, social needs)"
    )
    appointment_at: AwareDatetime | None = Field(
        default=None, description="the visit's appointment, booked or confirmed on a call"
    )
    appointment_status: AppointmentStatus | None = None
    appointment_id: str | None = Field(default=None, description="SIU: SCH-2 / SCH-1")
    appointment_with: str | None = Field(default=None, description="SIU: the provider")
    appointment_where: str | None = Field(default=None, description="SIU: the clinic")
    appointment_late: bool = Field(
        default=False, description="booked after the step's limit: the TCM visit will be late"
    )
    appointment_by: str | None = Field(default=None, description="'feed': booked by an SIU")
    reported_at: AwareDatetime | None = Field(
        default=None, description="the feed reported the visit on this time: confirm it"
    )
    corrections: list[Correction] = []

    @property
    def is_open(self) -> bool:
        return self.status == StepStatus.OPEN

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STEP_STATUSES


class Note(BaseModel):
    at: AwareDatetime
    by: str
    text: str
    step_id: str | None = None


class TimelineEvent(BaseModel):
    """One line of a transition's timeline (also written to Postgres). No PHI in `detail`."""

    model_config = ConfigDict(frozen=True)

    seq: int
    at: AwareDatetime
    kind: str
    step_id: str | None = None
    actor: str | None = None
    detail: str = ""


class TcmOutcome(BaseModel):
    applicable: bool
    eligible: bool = False
    code: str | None = Field(default=None, description="99496, 99495 or None")
    reasons: list[str] = []


class TrcOutcome(BaseModel):
    """HEDIS Transitions of Care components carebridge can see."""

    discharge_information: bool
    patient_engagement: bool
    medication_reconciliation: bool


class TransitionOutcome(BaseModel):
    closed_at: AwareDatetime
    status: TransitionStatus
    reason: str
    readmitted_at: AwareDatetime | None = None
    tcm: TcmOutcome
    trc: TrcOutcome


class TransitionState(BaseModel):
    """The live state a workflow query returns."""

    transition_id: str
    facility: str
    status: TransitionStatus
    protocol_id: str
    protocol_version: int
    discharged_at: AwareDatetime
    risk: RiskAssessment = STANDARD_RISK
    received_at: AwareDatetime | None = Field(
        default=None, description="when the discharge reached carebridge"
    )
    timezone: str | None = None
    period_ends_at: AwareDatetime | None = None
    readmitted_at: AwareDatetime | None = None
    contact_numbers: list[str] = []
    generation: int = 1
    steps: list[StepState] = []
    notes: list[Note] = []
    outcome: TransitionOutcome | None = None
    version: int = 0
    profile: PersonProfile = EMPTY_PROFILE
    screening: Screening | None = None
    referrals: list[Referral] = []
    owner: str | None = Field(default=None, description="the care manager who owns it")
    owner_since: AwareDatetime | None = None
    calls: list[CallRecord] = []


def _strip_required(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


class _OperatorAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    by: str = Field(min_length=1, max_length=200, description="who acts (required)")

    @field_validator("by")
    @classmethod
    def _actor(cls, value: str) -> str:
        return _strip_required(value)


class CompleteStepRequest(_OperatorAction):
    step_id: str
    outcome: str = Field(default="done", min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=2000)
    complexity: Complexity | None = Field(
        default=None, description="for the face-to-face visit: MDM complexity"
    )
    occurred_on: date | None = Field(
        default=None,
        description="the day it was done, in the facility's zone (a visit: its date); not "
        "before the discharge, not in the future; default: now",
    )


class CorrectionRequest(_OperatorAction):
    """A supervisor corrects a completed step: the day it was done and, for the visit, the
    provider's medical decision making complexity."""

    step_id: str
    occurred_on: date | None = None
    complexity: Complexity | None = None
    reason: str = Field(min_length=1, max_length=2000)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return _strip_required(value)

    @model_validator(mode="after")
    def _something(self) -> CorrectionRequest:
        if self.occurred_on is None and self.complexity is None:
            raise ValueError("a correction gives the date, the complexity or both")
        return self


class FeedChange(StrEnum):
    COMPLETION = "completion"  # the feed completed the step (an arrival, a document)
    APPOINTMENT = "appointment"  # the feed booked the step's appointment (an SIU)


class UndoFeedRequest(_OperatorAction):
    """A supervisor undoes the feed's automatic change of a step when the feed was wrong: the
    visit or discharge summary it completed reopens, the appointment it booked is cleared.
    Naming the change makes a repeat change nothing."""

    step_id: str
    undo: FeedChange = FeedChange.COMPLETION
    reason: str = Field(min_length=1, max_length=2000)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return _strip_required(value)


class AssignRequest(_OperatorAction):
    """Give the transition an owner: a supervisor assigns it to anyone on the team; a care
    manager claims it for themselves (`to` = `by`)."""

    to: str = Field(min_length=1, max_length=200)
    supervisor: bool = Field(
        default=False, description="the caller may assign to others (set from the caller's role)"
    )

    @field_validator("to")
    @classmethod
    def _assignee(cls, value: str) -> str:
        return _strip_required(value)


class Ownership(BaseModel):
    """Who owns a transition since when; `changed` is False when it already was theirs."""

    owner: str | None
    since: AwareDatetime | None
    changed: bool


class CallOutcomeRequest(CallFindings, _OperatorAction):
    """The outreach call's outcome form, on a call step (see schemas/call.py)."""

    step_id: str = "interactive_contact"
    at: AwareDatetime | None = Field(
        default=None, description="when the call was made; default: now (not in the future)"
    )


class AttemptRequest(_OperatorAction):
    step_id: str
    result: AttemptResult
    note: str | None = Field(default=None, max_length=2000)


class ReassignRequest(_OperatorAction):
    step_id: str
    to: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=2000)


class SnoozeRequest(_OperatorAction):
    step_id: str
    until: AwareDatetime
    reason: str = Field(min_length=1, max_length=2000)


class CancelStepRequest(_OperatorAction):
    step_id: str
    reason: str = Field(min_length=1, max_length=2000)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: str) -> str:
        return _strip_required(value)


class NoteRequest(_OperatorAction):
    text: str = Field(min_length=1, max_length=4000)
    step_id: str | None = None


class ProfileRequest(_OperatorAction):
    """Replace the person profile (the care manager's edit of what the ADT brought)."""

    profile: PersonProfile


class ScreeningRequest(_OperatorAction):
    step_id: str
    answers: HrsnAnswers


class ReferralRequest(_OperatorAction):
    """Close a referral step with the resource used (resolved from the site's directory by
    the API) and what came of it."""

    step_id: str
    resource: Resource
    outcome: ReferralOutcome
    note: str | None = Field(default=None, max_length=2000)


class AdtSignal(BaseModel):
    """A later ADT event for a running transition (routed by the intake)."""

    model_config = ConfigDict(frozen=True)

    event_type: str
    message_control_id: str
    occurred_at: AwareDatetime
    patient_class: str = ""
    deceased: bool = False
    contact_numbers: tuple[str, ...] | None = None
    merged_into_patient_key: str | None = Field(
        default=None, description="a merge (A34, A36, A39, A40, A47): the surviving patient key"
    )
    encounter_key: str | None = Field(
        default=None, description="the event's encounter (for a readmission: the admission)"
    )
    location: str | None = Field(default=None, description="A02: the new PV1-3")
    appointment: Appointment | None = Field(
        default=None, description="SIU: the follow-up visit's appointment (the feed)"
    )
    clinic: str | None = Field(
        default=None, description="A04 / A01 at a practice clinic the site lists: its location"
    )
    inbox_id: int | None = Field(default=None, description="the message's inbox row")
    feed: bool = Field(
        default=False, description="for the steps' declared events (workflows/transition_feed.py)"
    )
    message_type: str = Field(default="ADT", description="MSH-9.1: ADT, SIU or MDM")
    confirm: bool = Field(
        default=False, description="the site confirms feed visits (site.yaml feed.confirm_visits)"
    )
    document_type: str | None = Field(default=None, description="MDM: TXA-2")


class StepSummary(BaseModel):
    """A step as the projection keeps it for worklists and reports (no notes, no PHI)."""

    model_config = ConfigDict(frozen=True)

    step_id: str
    status: StepStatus
    tcm_element: str | None = None
    assignee: str | None = None
    due_at: AwareDatetime | None = None
    limit_at: AwareDatetime | None = None
    overdue_since: AwareDatetime | None = None
    missed_before_arrival: bool = False
    escalation_level: int = 0
    completed_at: AwareDatetime | None = None
    completed_by: str | None = None
    outcome: str | None = None
    complexity: Complexity | None = None
    attempts: tuple[tuple[AwareDatetime, AttemptResult], ...] = ()
    is_call: bool = Field(default=False, description="a call step (schemas/call.py)")
    appointment_at: AwareDatetime | None = None
    appointment_with: str | None = Field(
        default=None, description="the provider the visit was booked with (staff, not PHI)"
    )
    appointment_late: bool = False
    reported_at: AwareDatetime | None = None


class EscalationNotice(BaseModel):
    """What the notify activity records and sends (no PHI: ids, roles and instants)."""

    model_config = ConfigDict(frozen=True)

    transition_id: str
    step_id: str
    level: int
    role: str
    channel: str
    due_at: AwareDatetime
    scheduled_at: AwareDatetime
    transport: Transport | None = Field(
        default=None, description="the transition's transport for this channel; None = site's"
    )
    missed_before_arrival: tuple[str, ...] = Field(
        default=(),
        description="set on the one 'arrived late' notice (level 0): the steps whose deadlines "
        "had passed when the discharge arrived",
    )
    red_flag: bool = Field(
        default=False,
        description="a call reported red-flag symptoms (level 0, due_at = the call): a "
        "clinician is to call back now",
    )


class UndeliveredNotice(BaseModel):
    model_config = ConfigDict(frozen=True)

    notice: EscalationNotice
    failure: str


class ProjectionRecord(BaseModel):
    """One row of the transition projection (Postgres) plus timeline events not yet written."""

    model_config = ConfigDict(frozen=True)

    transition_id: str
    encounter_key: str
    facility: str
    protocol_id: str
    protocol_version: int
    status: TransitionStatus
    discharged_at: AwareDatetime
    risk_tier: RiskTier = RiskTier.STANDARD
    lace: int = 0
    current_step: str | None
    next_due_at: AwareDatetime | None
    overdue_steps: tuple[str, ...] = ()
    escalation_level: int = 0
    readmitted_at: AwareDatetime | None = None
    owner: str | None = None
    steps: tuple[StepSummary, ...] = ()
    outcome: TransitionOutcome | None = None
    events: tuple[TimelineEvent, ...] = ()
    undelivered: tuple[UndeliveredNotice, ...] = Field(
        default=(),
        description="notices whose delivery gave up and are not yet in the outbox (PostgreSQL "
        "was away): written there with the row, so operators see and redeliver them",
    )
    version: int
