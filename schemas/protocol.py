"""Transition protocols as versioned data: steps, due rules, attempts, escalation ladders.

A protocol is loaded from a YAML file under `protocols/`, validated here, selected for a
discharge by the site table (`schemas.site`) and pinned into the workflow's input: a running
transition keeps the version it started with (DESIGN.md invariant 4).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.feed import DISCHARGE_INFORMATION_EVENTS, VISIT_EVENTS, StepEvent
from schemas.social_needs import HrsnDomain

STEP_ID_PATTERN = r"^[a-z][a-z0-9_]*$"


class DueUnit(StrEnum):
    HOURS = "hours"
    BUSINESS_HOURS = "business_hours"
    CALENDAR_DAYS = "calendar_days"
    BUSINESS_DAYS = "business_days"


class RiskTier(StrEnum):
    STANDARD = "standard"
    HIGH = "high"


class TcmElement(StrEnum):
    """What a step proves for CMS TCM / HEDIS TRC when it is completed."""

    INTERACTIVE_CONTACT = "interactive_contact"
    MEDICATION_RECONCILIATION = "medication_reconciliation"
    FACE_TO_FACE_VISIT = "face_to_face_visit"
    DISCHARGE_INFORMATION = "discharge_information"


class DueRule(BaseModel):
    """When a step is due: `amount` units after the discharge, or after the completion of the
    step named in `after`.

    Day units take the anchor's local date as day 0 and end at the end of the last day in the
    facility's time zone (CPT: "within two business days of discharge", Monday to Friday
    except holidays). Hour units count from the anchor instant; business hours count only
    inside the site's working hours on business days.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit: DueUnit
    amount: int = Field(ge=0)
    after: str | None = Field(default=None, description="step id; default: the discharge")


class Delay(BaseModel):
    """How long after a step's due instant an escalation level fires."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit: DueUnit = DueUnit.HOURS
    amount: int = Field(default=0, ge=0)


class EscalationLevel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    level: int = Field(ge=1)
    role: str = Field(min_length=1, description="who is told: care_manager, supervisor, ...")
    channel: str = Field(min_length=1, description="worklist, email, sms, page, ...")
    delay: Delay = Delay()


class StepKind(StrEnum):
    HUMAN_TASK = "human_task"
    AUTOMATED = "automated"
    SCREENING = "screening"  # completed by recording the HRSN screening answers
    REFERRAL = "referral"  # opens when its domain screens positive; closed with a resource


class StepRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=STEP_ID_PATTERN)
    title: str = Field(min_length=1)
    kind: StepKind = StepKind.HUMAN_TASK
    owner_role: str = "care_manager"
    due: DueRule
    high_risk_due: DueRule | None = Field(
        default=None, description="replaces `due` for high-risk (LACE) transitions"
    )
    limit: DueRule | None = Field(
        default=None,
        description="latest instant a snooze may move the due time to; default: the due rule",
    )
    tiers: tuple[RiskTier, ...] = Field(
        default=(), description="risk tiers the step applies to; empty = all"
    )
    prerequisites: tuple[str, ...] = ()
    min_attempts: int = Field(
        default=0, ge=0, description="documented attempts that satisfy the step's rule"
    )
    tcm_element: TcmElement | None = None
    escalation: tuple[EscalationLevel, ...] = ()
    referral_for: HrsnDomain | None = Field(
        default=None, description="referral steps: the social-needs domain they answer"
    )
    events: tuple[StepEvent, ...] | None = Field(
        default=None,
        description="feed messages that complete or book the step (schemas/feed.py); unset: "
        "the defaults of its tcm_element (the visit: SIU books, A04/A01 at a practice clinic "
        "completes; discharge information: MDM T02/T04 completes); []: none",
    )

    def feed_events(self) -> tuple[StepEvent, ...]:
        if self.events is not None:
            return self.events
        if self.tcm_element == TcmElement.FACE_TO_FACE_VISIT:
            return VISIT_EVENTS
        if self.tcm_element == TcmElement.DISCHARGE_INFORMATION:
            return DISCHARGE_INFORMATION_EVENTS
        return ()

    @model_validator(mode="after")
    def _ladder_in_order(self) -> StepRule:
        levels = [level.level for level in self.escalation]
        if levels != sorted(set(levels)):
            raise ValueError(f"step {self.id}: escalation levels must be distinct and ascending")
        if (self.kind == StepKind.REFERRAL) != (self.referral_for is not None):
            raise ValueError(f"step {self.id}: a referral step names its domain (referral_for)")
        return self

    def due_for(self, tier: RiskTier) -> DueRule:
        return self.high_risk_due if tier == RiskTier.HIGH and self.high_risk_due else self.due

    def applies_to(self, tier: RiskTier) -> bool:
        return not self.tiers or tier in self.tiers


class AppliesTo(BaseModel):
    """The discharges a protocol is written for; the site table may select it only for these."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    dispositions: tuple[str, ...] = Field(default=(), description="PV1-36; empty = any")
    patient_classes: tuple[str, ...] = Field(default=(), description="PV1-2; empty = any")
    deceased: bool = Field(default=False, description="for a patient who died (PID-29/30)")


class Protocol(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    version: int = Field(ge=1)
    title: str
    description: str = ""
    applies_to: AppliesTo = AppliesTo()
    tcm: bool = Field(description="whether the transition can qualify for CMS TCM 99495/99496")
    period_days: int = Field(default=30, ge=1, description="the transition period (TCM: 30)")
    closes_with: str | None = Field(
        default=None, description="close at once with this outcome (e.g. 'deceased')"
    )
    steps: tuple[StepRule, ...] = ()

    @model_validator(mode="after")
    def _steps_form_a_dag(self) -> Protocol:
        ids = [step.id for step in self.steps]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate step id(s): {', '.join(duplicates)}")
        known = set(ids)
        edges: dict[str, set[str]] = {}
        for step in self.steps:
            anchors = {r.after for r in (step.due, step.high_risk_due, step.limit) if r and r.after}
            for ref in (*step.prerequisites, *anchors):
                if ref not in known:
                    raise ValueError(f"step {step.id}: unknown step {ref!r} in prerequisites/after")
                if ref == step.id:
                    raise ValueError(f"step {step.id}: depends on itself")
            edges[step.id] = set(step.prerequisites) | anchors
        cycle = _find_cycle(edges)
        if cycle:
            raise ValueError(f"steps form a cycle: {' -> '.join(cycle)}")
        if self.closes_with and self.steps:
            raise ValueError("a protocol that closes at once has no steps")
        kinds = {step.id: step.kind for step in self.steps}
        for step in self.steps:
            if step.kind == StepKind.REFERRAL and (
                step.due.after is None or kinds[step.due.after] != StepKind.SCREENING
            ):
                raise ValueError(f"step {step.id}: a referral is due after a screening step")
        return self

    def step(self, step_id: str) -> StepRule:
        for rule in self.steps:
            if rule.id == step_id:
                return rule
        raise KeyError(step_id)


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for nxt in sorted(edges.get(node, ())):
            found = visit(nxt)
            if found:
                return found
        visiting.pop()
        done.add(node)
        return None

    for start in sorted(edges):
        found = visit(start)
        if found:
            return found
    return None
