"""Simulated staff at work: once an hour of their shift, each role takes the open steps its
people would see on the worklist (most escalated first, then the longest overdue, then the
soonest due) and acts on as many as its capacity allows, through the same Updates an
operator uses (record_call, record_screening, complete_step)."""

from __future__ import annotations

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
from schemas.social_needs import (
    NO_NEEDS,
)
from schemas.transition import (
    CallOutcomeRequest,
    CompleteStepRequest,
    Complexity,
    ScreeningRequest,
    StepStatus,
    StepSummary,
    TransitionState,
)
from workers.simulation.staff import StaffModel
from workflows.transition import TransitionWorkflow

MAX_ATTEMPTS = 20  # the workflow's own cap on attempts a step


@dataclass(frozen=True)
class WorkItem:
    transition_id: str
    step: StepSummary
    kind: StepKind
    role: str
    discharged_at: datetime
    high_risk: bool

    def order(self) -> tuple[int, datetime, datetime, str]:
        """Most escalated first, then overdue longest, then due soonest."""
        far = datetime.max.replace(tzinfo=UTC)
        return (
            -self.step.escalation_level,
            self.step.overdue_since or far,
            self.step.due_at or far,
            self.transition_id,
        )


@dataclass
class DayLoad:
    """One local day of one role: what it did, what was still waiting at its last hour,
    and what its people could have done."""

    done: int = 0
    waiting: int = 0
    capacity: int = 0

    @property
    def needed(self) -> int:
        return self.done + self.waiting


@dataclass
class StaffLog:
    actions: Counter[str] = field(default_factory=Counter)  # "record_call:reached" ...
    refused: Counter[str] = field(default_factory=Counter)  # the refusal's first line
    load: dict[date, dict[str, DayLoad]] = field(default_factory=lambda: defaultdict(dict))


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
        self.log = StaffLog()

    def plan_capacity(self, day: date) -> None:
        """Each role's capacity on a local day, before its first hour."""
        business = self._calendar.is_business_day(day)
        for name, role in self._model.roles.items():
            self.log.load[day].setdefault(name, DayLoad()).capacity = (
                role.people * role.per_hour * role.hours_on(day, business)
            )

    def on_duty(self, now: datetime) -> dict[str, int]:
        """Roles at work at `now`, with what their people can do this hour."""
        local = now.astimezone(self._zone)
        business = self._calendar.is_business_day(local.date())
        return {
            name: role.people * role.per_hour
            for name, role in self._model.roles.items()
            if role.on_duty(local, business)
        }

    async def act(self, now: datetime, transition_ids: list[str]) -> None:
        """One hour of work at `now` on the active transitions among `transition_ids`."""
        capacity = self.on_duty(now)
        if not capacity or not transition_ids:
            return
        day = now.astimezone(self._zone).date()
        if day not in self.log.load:
            self.plan_capacity(day)
        items = sorted(await self._worklist(now, transition_ids), key=WorkItem.order)
        waiting: Counter[str] = Counter()
        for item in items:
            if capacity.get(item.role, 0) <= 0:
                waiting[item.role] += 1
                continue
            capacity[item.role] -= 1
            await self._do(item)
            self.log.load[day].setdefault(item.role, DayLoad()).done += 1
        for role in capacity:
            self.log.load[day].setdefault(role, DayLoad()).waiting = waiting[role]

    async def _worklist(self, now: datetime, transition_ids: list[str]) -> list[WorkItem]:
        rows = await self._pool.fetch(
            "SELECT transition_id, protocol_id, protocol_version, risk_tier, discharged_at, "
            "steps FROM transitions WHERE status = 'active' AND transition_id = ANY($1::text[])",
            transition_ids,
        )
        items: list[WorkItem] = []
        for row in rows:
            protocol = self._library.versions[row["protocol_id"]][row["protocol_version"]]
            rules = {rule.id: rule for rule in protocol.steps}
            high_risk = row["risk_tier"] == RiskTier.HIGH.value
            discharge_day = row["discharged_at"].astimezone(self._zone).date()
            steps = row["steps"]
            for raw in json.loads(steps) if isinstance(steps, str) else steps:
                step = StepSummary.model_validate(raw)
                rule = rules.get(step.step_id)
                if step.status != StepStatus.OPEN or rule is None:
                    continue
                if rule.kind in (StepKind.REFERRAL, StepKind.AUTOMATED):
                    continue  # referrals need a resource; automated steps are the engine's
                role, work = self._model.work_for(step.step_id, rule.owner_role)
                if now.astimezone(self._zone).date() < discharge_day + timedelta(
                    days=work.earliest(high_risk)
                ):
                    continue
                if step.is_call and not self._may_call(step, now):
                    continue
                items.append(
                    WorkItem(
                        row["transition_id"],
                        step,
                        rule.kind,
                        role,
                        row["discharged_at"],
                        high_risk,
                    )
                )
        return items

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

    async def _do(self, item: WorkItem) -> None:
        handle = transition_handle(self._client, item.transition_id)
        by = self._person(item.role)
        step_id = item.step.step_id
        try:
            if item.step.is_call:
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
            elif item.kind == StepKind.SCREENING:  # simulated patients screen negative
                await handle.execute_update(
                    TransitionWorkflow.record_screening,
                    ScreeningRequest(step_id=step_id, by=by, answers=NO_NEEDS),
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


def _reason(exc: BaseException) -> str:
    cause: Any = exc.__cause__ if isinstance(exc, WorkflowUpdateFailedError) else exc
    return (str(getattr(cause, "message", None) or cause) or type(exc).__name__).splitlines()[0]
