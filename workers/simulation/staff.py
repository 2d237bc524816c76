"""The simulated staff, read from a YAML staff model: who works when, how many minutes each
task takes (or how many tasks an hour), how often a call reaches the patient, when each
step's work is done after the discharge, when the follow-up visit is booked for and how
often the patient misses it, and how soon each role sees an escalation."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.social_needs import HrsnDomain

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class StaffError(ValueError):
    """A staff model that cannot be read."""


class Role(BaseModel):
    """People of one role: their shift on the site's local clock, how long a task takes
    them, and how they react to escalations. Each person works 60 minutes a shift hour."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    people: int = Field(1, ge=0, le=500)
    start: time = time(8, 0)
    end: time = time(17, 0)
    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    minutes: float | None = Field(
        None, gt=0, le=480, description="minutes a task or call attempt takes (default 10)"
    )
    per_hour: int | None = Field(
        None, ge=1, le=200, description="the older form: tasks an hour, 60/per_hour minutes each"
    )
    business_days_only: bool = Field(
        True, description="off on the site calendar's holidays and closures too"
    )
    reacts_within_hours: float | None = Field(
        None,
        ge=0,
        le=240,
        description="hours after an escalation before the role sees it and takes it first "
        "(default: at its next working hour)",
    )
    answers_pages_out_of_hours: bool = Field(
        False, description="a person on call does a paged step off shift"
    )

    @model_validator(mode="after")
    def _shift(self) -> Role:
        if self.start >= self.end:
            raise ValueError("a shift's start must be before its end")
        if self.minutes is not None and self.per_hour is not None:
            raise ValueError("give minutes or per_hour, not both")
        return self

    @property
    def task_minutes(self) -> float:
        if self.minutes is not None:
            return self.minutes
        return 60 / (self.per_hour or 6)

    def on_duty(self, local: datetime, business_day: bool) -> bool:
        if self.people == 0 or WEEKDAYS[local.weekday()] not in self.days:
            return False
        if self.business_days_only and not business_day:
            return False
        return self.start <= local.time() < self.end

    def hours_on(self, day: date, business_day: bool) -> int:
        """Whole shift hours that day (the simulation acts once an hour)."""
        if self.people == 0 or WEEKDAYS[day.weekday()] not in self.days:
            return 0
        if self.business_days_only and not business_day:
            return 0
        start = datetime.combine(day, self.start)
        end = datetime.combine(day, self.end)
        return int((end - start) / timedelta(hours=1))


class StepWork(BaseModel):
    """When a step's work is done and by whom (default: its owner role, as soon as it is
    open)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: str | None = None
    after_days: int = Field(0, ge=0, le=60, description="local days after the discharge day")
    high_risk_after_days: int | None = Field(None, ge=0, le=60)
    minutes: float | None = Field(
        None, gt=0, le=480, description="minutes this step's task takes (default: the role's)"
    )
    visit_after_days: int | None = Field(
        None,
        ge=0,
        le=60,
        description="the visit step: booked through the scheduling feed (SIU^S12) for this "
        "many days after the discharge day, instead of completed by the role",
    )
    high_risk_visit_after_days: int | None = Field(None, ge=0, le=60)
    visit_days: Literal["days", "business_days"] = "business_days"

    def earliest(self, high_risk: bool) -> int:
        if high_risk and self.high_risk_after_days is not None:
            return self.high_risk_after_days
        return self.after_days

    def visit_offset(self, high_risk: bool) -> int | None:
        """Days after the discharge day the visit is booked for (None: not booked)."""
        if high_risk and self.high_risk_visit_after_days is not None:
            return self.high_risk_visit_after_days
        return self.visit_after_days


class StaffModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    roles: dict[str, Role] = Field(min_length=1)
    reach: tuple[float, ...] = Field(
        (0.6, 0.5, 0.4),
        min_length=1,
        description="chance a call reaches the patient on attempt 1, 2, 3, ... (the last "
        "holds for later attempts)",
    )
    retry_after_hours: int = Field(3, ge=1, le=72)
    steps: dict[str, StepWork] = {}
    no_show_rate: tuple[float, ...] = Field(
        (0.0,),
        min_length=1,
        description="chance the patient misses booked visit 1, 2, ... (a single number: every "
        "visit; the last holds for later ones)",
    )
    visit_time: time = Field(time(10, 0), description="the booked visits' local start time")
    needs: dict[HrsnDomain, float] = Field(
        {}, description="chance a screened patient screens positive in each domain"
    )
    seed: int = 1

    @field_validator("no_show_rate", mode="before")
    @classmethod
    def _one_rate(cls, value: object) -> object:
        return (value,) if isinstance(value, int | float) else value

    @model_validator(mode="after")
    def _known_roles(self) -> StaffModel:
        if not all(0.0 <= p <= 1.0 for p in self.reach):
            raise ValueError("every reach chance must be between 0 and 1")
        if not all(0.0 <= p <= 1.0 for p in self.no_show_rate):
            raise ValueError("every no-show rate must be between 0 and 1")
        if not all(0.0 <= p <= 1.0 for p in self.needs.values()):
            raise ValueError("every needs chance must be between 0 and 1")
        for step_id, work in self.steps.items():
            if work.role is not None and work.role not in self.roles:
                raise ValueError(f"step {step_id!r} names role {work.role!r}, not in roles")
        return self

    def reach_chance(self, attempt: int) -> float:
        """The chance attempt number `attempt` (1 = the first) reaches the patient."""
        return self.reach[min(attempt, len(self.reach)) - 1]

    def no_show_chance(self, visit: int) -> float:
        """The chance booked visit number `visit` (1 = the first) is missed."""
        return self.no_show_rate[min(visit, len(self.no_show_rate)) - 1]

    def minutes_for(self, role: str, work: StepWork) -> float:
        return work.minutes if work.minutes is not None else self.roles[role].task_minutes

    def work_for(self, step_id: str, owner_role: str) -> tuple[str, StepWork]:
        work = self.steps.get(step_id, StepWork())
        role = work.role or (owner_role if owner_role in self.roles else "care_manager")
        return role, work


def load_staff(path: Path) -> StaffModel:
    """The staff model in a YAML file; a clear error names what is wrong with it."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise StaffError(f"cannot read staff model {path}: {exc}") from None
    try:
        return StaffModel.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            _sentence(".".join(str(p) for p in e["loc"]) or "the file", e["msg"])
            for e in exc.errors()
        )
        raise StaffError(f"staff model {path}: {problems}.") from None


def _sentence(where: str, message: str) -> str:
    """Pydantic's message about one field as part of a sentence naming the field."""
    if message.startswith("Value error, "):
        return f"{where}: {message.removeprefix('Value error, ')}"
    if message.startswith("Input should be"):
        return f"{where} should be{message.removeprefix('Input should be')}"
    if message == "Extra inputs are not permitted":
        return f"{where} is not a field of the staff model"
    if message == "Field required":
        return f"{where} is required"
    return f"{where}: {message}"
