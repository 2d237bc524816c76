"""Simulated staff at work: once an hour of their shift, each role takes the open steps its
people would see on the worklist (most escalated first, once the role has seen the
escalation, then the longest overdue, then the soonest due) and acts on as many as its
minutes allow, through the same Updates an operator uses (record_call, record_screening,
complete_step, close_referral, correct_step for the visit's complexity). A scheduler books
the follow-up visit through the scheduling feed (workers/simulation/visits.py) when the
staff model gives the visit's day; the clinic then reports the arrival or the no-show."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from activities.business_calendar import BusinessCalendar
from schemas import keys
from schemas.call import Reached
from schemas.protocol import RiskTier, StepKind, TcmElement
from schemas.protocol_library import ProtocolLibrary
from schemas.social_needs import HrsnDomain, ReferralOutcome
from schemas.transition import (
    CallOutcomeRequest,
    CompleteStepRequest,
    Complexity,
    CorrectionRequest,
    ReferralRequest,
    ScreeningRequest,
    StepStatus,
    StepSummary,
    TransitionState,
)
from workers.simulation import escalations, needs, visits
from workers.simulation.open_steps import OpenSteps
from workers.simulation.staff import StaffModel, StepWork
from workflows.transition import TransitionWorkflow

MAX_ATTEMPTS = 20  # the workflow's own cap on attempts a step
FEED_ACTOR = "feed"  # who the workflow says completed a step the feed completed
PROVIDER = "sim-provider"
ON_CALL_MINUTES = 60.0  # one person on call, for an hour


@dataclass(frozen=True)
class WorkItem:
    transition_id: str
    step: StepSummary
    kind: StepKind
    role: str
    discharged_at: datetime
    high_risk: bool
    minutes: float = 10.0
    work: StepWork = field(default_factory=StepWork)
    seen_level: int = 0  # the escalation level the role has seen
    paged: bool = False  # the escalation it has seen is a page
    referral_for: HrsnDomain | None = None

    def order(self) -> tuple[int, datetime, datetime, str]:
        """Most escalated (as the role has seen it) first, then overdue longest, then due
        soonest."""
        far = datetime.max.replace(tzinfo=UTC)
        return (
            -self.seen_level,
            self.step.overdue_since or far,
            self.step.due_at or far,
            self.transition_id,
        )


@dataclass
class DayLoad:
    """One local day of one role: the tasks and minutes it did, what was still waiting at
    its last hour, and the minutes its people could work (60 a person a shift hour, plus
    any time on call)."""

    done: int = 0
    waiting: int = 0
    minutes_done: float = 0.0
    minutes_waiting: float = 0.0
    minutes_available: float = 0.0

    @property
    def needed(self) -> int:
        return self.done + self.waiting

    @property
    def minutes_needed(self) -> float:
        return self.minutes_done + self.minutes_waiting


@dataclass
class StaffLog:
    actions: Counter[str] = field(default_factory=Counter)  # "record_call:reached" ...
    refused: Counter[str] = field(default_factory=Counter)  # the refusal's first line
    load: dict[date, dict[str, DayLoad]] = field(default_factory=lambda: defaultdict(dict))
    sent: Counter[str] = field(default_factory=Counter)  # "booking:AA", "no-show:AA" ...

    def sent_of(self, kind: str) -> int:
        """Staff and clinic messages of one kind sent, whatever their answer."""
        return sum(n for what, n in self.sent.items() if what.split(":")[0] == kind)


class Staff:
    def __init__(
        self,
        model: StaffModel,
        library: ProtocolLibrary,
        client: Client,
        pool: asyncpg.Pool,
    ) -> None:
        self._model = model
        self._library = library
        self._client = client
        self._pool = pool
        self._rng = random.Random(model.seed)
        self._calendar = BusinessCalendar(library.site.calendar)
        self._zone = library.site.calendar_zone()
        self._turn: Counter[str] = Counter()
        self._open_steps = OpenSteps(model, library, self._zone)
        self._escalations = escalations.RaisedEscalations()
        self.log = StaffLog()
        self.outbox = visits.Outbox()
        self._patients: dict[str, visits.Patient] = {}
        self._visits: Counter[str] = Counter()  # visits booked, by transition
        self._booked: dict[str, datetime] = {}  # transition -> the booked visit's outcome time
        self._assessed: set[str] = set()  # transitions whose visit has its MDM complexity
        self._overrun: dict[str, tuple[date, float]] = {}  # minutes a task ran into the hour
        self._control = itertools.count(1)

    def discharged(self, transition_id: str, raw: bytes) -> None:
        """A discharge the intake accepted: its patient, for the clinic's messages."""
        try:
            self._patients[transition_id] = visits.Patient.of_discharge(raw)
        except (ValueError, UnicodeDecodeError):
            return  # a replayed message without a PID: no visit is booked through the feed

    def plan_capacity(self, day: date) -> None:
        """Each role's minutes on a local day, before its first hour."""
        business = self._calendar.is_business_day(day)
        for name, role in self._model.roles.items():
            self.log.load[day].setdefault(name, DayLoad()).minutes_available = (
                role.people * 60.0 * role.hours_on(day, business)
            )

    def on_duty(self, now: datetime) -> dict[str, float]:
        """Roles at work at `now`, with the minutes their people have this hour; a role off
        shift that answers pages is there with 0 (on call: it takes paged steps only)."""
        local = now.astimezone(self._zone)
        business = self._calendar.is_business_day(local.date())
        working = {}
        for name, role in self._model.roles.items():
            if role.on_duty(local, business):
                working[name] = role.people * 60.0
            elif role.answers_pages_out_of_hours and role.people > 0:
                working[name] = 0.0
        return working

    def _budget(self, day: date, minutes: dict[str, float]) -> dict[str, float]:
        """This hour's minutes a role has, less what a task started last hour ran over."""
        budget = {}
        for role, available in minutes.items():
            overrun_day, overrun = self._overrun.get(role, (day, 0.0))
            budget[role] = available - (overrun if overrun_day == day else 0.0)
        return budget

    async def act(self, now: datetime, transition_ids: list[str]) -> None:
        """One hour of work at `now` on the active transitions among `transition_ids`."""
        shift = self.on_duty(now)
        if not shift or not transition_ids:
            return
        day = now.astimezone(self._zone).date()
        if day not in self.log.load:
            self.plan_capacity(day)
        await self._record_visits(now)
        items = sorted(await self._worklist(now, transition_ids), key=WorkItem.order)
        budget = self._budget(day, shift)
        on_call = {role: ON_CALL_MINUTES for role, minutes in shift.items() if minutes == 0}
        waiting: Counter[str] = Counter()
        waiting_minutes: defaultdict[str, float] = defaultdict(float)
        for item in items:
            if item.role not in shift:
                continue
            load = self.log.load[day].setdefault(item.role, DayLoad())
            if item.role in on_call:
                if not item.paged or on_call[item.role] <= 0:
                    continue
                on_call[item.role] -= item.minutes
                load.minutes_available += item.minutes
            elif budget[item.role] <= 0 or (
                load.minutes_done + item.minutes > load.minutes_available
            ):
                waiting[item.role] += 1
                waiting_minutes[item.role] += item.minutes
                continue
            else:
                budget[item.role] -= item.minutes
            await self._do(item, now)
            load.done += 1
            load.minutes_done += item.minutes
        for role in shift:
            if role in on_call:
                continue
            load = self.log.load[day].setdefault(role, DayLoad())
            load.waiting, load.minutes_waiting = waiting[role], waiting_minutes[role]
            self._overrun[role] = (day, max(0.0, -budget[role]))

    async def _worklist(self, now: datetime, transition_ids: list[str]) -> list[WorkItem]:
        open_steps = await self._open_steps.read(self._pool, transition_ids)
        raised = await self._escalations.latest(self._pool, transition_ids, now)
        today = now.astimezone(self._zone).date()
        items: list[WorkItem] = []
        for open_step in open_steps:
            tid, step, role, work = (
                open_step.transition_id,
                open_step.step,
                open_step.role,
                open_step.work,
            )
            escalation = raised.get((tid, step.step_id))
            reacts = self._model.roles[role].reacts_within_hours
            seen = escalation is not None and escalation.seen_by(now, reacts)
            # an escalation the role has seen brings the step forward from its usual day
            if not seen and today < open_step.earliest:
                continue
            if step.is_call and not self._may_call(step, now):
                continue
            if self._books(step, work, open_step.high_risk) and not self._to_book(tid, step, now):
                continue
            items.append(
                WorkItem(
                    tid,
                    step,
                    open_step.kind,
                    role,
                    open_step.discharged_at,
                    open_step.high_risk,
                    minutes=self._model.minutes_for(role, work),
                    work=work,
                    seen_level=escalation.level if escalation and seen else 0,
                    paged=seen and escalation is not None and escalation.channel == "page",
                    referral_for=open_step.referral_for,
                )
            )
        return items

    @staticmethod
    def _books(step: StepSummary, work: StepWork, high_risk: bool) -> bool:
        """The visit step, booked through the scheduling feed rather than completed."""
        return (
            step.tcm_element == TcmElement.FACE_TO_FACE_VISIT.value
            and work.visit_offset(high_risk) is not None
        )

    def _to_book(self, transition_id: str, step: StepSummary, now: datetime) -> bool:
        """No appointment on the step, and none booked whose outcome is still to come."""
        if step.appointment_at is not None:
            return False
        outcome = self._booked.get(transition_id)
        return outcome is None or outcome < now

    async def _record_visits(self, now: datetime) -> None:
        """The provider records the MDM complexity of each visit the clinic's arrival
        completed (correct_step, as an operator records it after the fact). Only visits
        whose outcome is due and not yet assessed are read: a month's stops would otherwise
        parse every booked transition's steps each hour."""
        due = [t for t, at in self._booked.items() if at <= now and t not in self._assessed]
        if not due:
            return
        rows = await self._pool.fetch(
            "SELECT transition_id, risk_tier, steps FROM transitions "
            "WHERE status = 'active' AND transition_id = ANY($1::text[])",
            due,
        )
        for row in rows:
            for step in _steps(row["steps"]):
                if step.tcm_element != TcmElement.FACE_TO_FACE_VISIT.value:
                    continue
                if step.complexity is not None:
                    self._assessed.add(row["transition_id"])
                    continue
                if step.status != StepStatus.COMPLETED or step.completed_by != FEED_ACTOR:
                    continue
                high = row["risk_tier"] == RiskTier.HIGH.value
                request = CorrectionRequest(
                    step_id=step.step_id,
                    by=PROVIDER,
                    complexity=Complexity.HIGH if high else Complexity.MODERATE,
                    reason="medical decision making recorded by the provider at the visit",
                )
                try:
                    await transition_handle(self._client, row["transition_id"]).execute_update(
                        TransitionWorkflow.correct_step, request
                    )
                except (WorkflowUpdateFailedError, RPCError) as exc:
                    self.log.refused[_reason(exc)] += 1
                    continue
                self.log.actions["visit:complexity"] += 1

    def _may_call(self, step: StepSummary, now: datetime) -> bool:
        if len(step.attempts) >= MAX_ATTEMPTS:
            return False
        if not step.attempts:
            return True
        last = max(at for at, _ in step.attempts)
        return now - last >= timedelta(hours=self._model.retry_after_hours)

    def _person(self, role: str) -> str:
        people = self._model.roles[role].people
        self._turn[role] += 1
        return f"sim-{role.replace('_', '-')}-{(self._turn[role] - 1) % max(people, 1) + 1}"

    def _book(self, item: WorkItem, now: datetime) -> str:
        """The scheduler books the visit (SIU^S12 now) for the staff model's day; the clinic
        reports the patient's arrival (A04) at its start, or a no-show (S26) after it."""
        tid = item.transition_id
        patient = self._patients.get(tid)
        offset = item.work.visit_offset(item.high_risk)
        if patient is None or offset is None:
            return "book:no patient"
        self._visits[tid] += 1
        number = self._visits[tid]
        discharge_day = item.discharged_at.astimezone(self._zone).date()
        today = now.astimezone(self._zone).date()
        day = visits.visit_day(self._calendar, discharge_day, offset, item.work.visit_days, today)
        start = visits.start_on(day, self._model.visit_time, self._zone)
        appointment = visits.appointment_id(tid, number)
        control = f"SIMS{next(self._control):08d}"
        self.outbox.push(
            now, visits.booking(patient, start, now, appointment, control), "booking", tid
        )
        missed = self._rng.random() < self._model.no_show_chance(number)
        control = f"SIMS{next(self._control):08d}"
        if missed:
            at = start + visits.NO_SHOW_AFTER
            self.outbox.push(
                at, visits.no_show(patient, start, at, appointment, control), "no-show", tid
            )
        else:
            at = start
            self.outbox.push(at, visits.arrival(patient, start, control), "arrival", tid)
        self._booked[tid] = at
        return f"book:{'no-show' if missed else 'arrives'}"

    async def _do(self, item: WorkItem, now: datetime) -> None:
        handle = transition_handle(self._client, item.transition_id)
        by = self._person(item.role)
        step_id = item.step.step_id
        try:
            if self._books(item.step, item.work, item.high_risk):
                what = self._book(item, now)
            elif item.kind == StepKind.REFERRAL and item.referral_for is not None:
                resource = self._rng.choice(self._library.resources_for(item.referral_for))
                await handle.execute_update(
                    TransitionWorkflow.close_referral,
                    ReferralRequest(
                        step_id=step_id,
                        by=by,
                        resource=resource,
                        outcome=ReferralOutcome.CONNECTED,
                    ),
                )
                what = "referral"
            elif item.step.is_call:
                attempt = len(item.step.attempts) + 1
                reached = self._rng.random() < self._model.reach_chance(attempt)
                await handle.execute_update(
                    TransitionWorkflow.record_call,
                    CallOutcomeRequest(
                        step_id=step_id,
                        by=by,
                        reached=Reached.PATIENT if reached else Reached.NOBODY,
                        left_message=not reached,
                    ),
                )
                what = f"call:{'reached' if reached else 'no answer'}"
            elif item.kind == StepKind.SCREENING:  # negative unless the model's needs draw one
                await handle.execute_update(
                    TransitionWorkflow.record_screening,
                    ScreeningRequest(
                        step_id=step_id, by=by, answers=needs.answers(self._model.needs, self._rng)
                    ),
                )
                what = "screening"
            else:
                await handle.execute_update(
                    TransitionWorkflow.complete_step,
                    CompleteStepRequest(
                        step_id=step_id,
                        by=by,
                        outcome="done (simulated)",
                        complexity=visit_complexity(item),
                    ),
                )
                what = "complete"
        except (WorkflowUpdateFailedError, RPCError) as exc:
            self.log.refused[_reason(exc)] += 1
            return
        self.log.actions[what] += 1


def visit_complexity(item: WorkItem) -> Complexity | None:
    """The provider's medical decision making at the simulated visit: high for a high-risk
    patient, else moderate (TCM codes need it recorded)."""
    if item.step.tcm_element != TcmElement.FACE_TO_FACE_VISIT.value:
        return None
    return Complexity.HIGH if item.high_risk else Complexity.MODERATE


def transition_handle(
    client: Client, transition_id: str
) -> WorkflowHandle[TransitionWorkflow, TransitionState]:
    return client.get_workflow_handle_for(TransitionWorkflow.run, keys.workflow_id(transition_id))


def _steps(raw: Any) -> list[StepSummary]:
    steps = json.loads(raw) if isinstance(raw, str) else raw
    return [StepSummary.model_validate(step) for step in steps]


def _reason(exc: BaseException) -> str:
    cause: Any = exc.__cause__ if isinstance(exc, WorkflowUpdateFailedError) else exc
    return (str(getattr(cause, "message", None) or cause) or type(exc).__name__).splitlines()[0]
