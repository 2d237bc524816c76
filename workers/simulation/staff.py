"""The simulated staff, read from a YAML staff model: who works when, how many calls or
tasks each handles an hour, how often a call reaches the patient, and when each step's work
is done after the discharge."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class StaffError(ValueError):
    """A staff model that cannot be read."""


class Role(BaseModel):
    """People of one role: their shift on the site's local clock and their hourly capacity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    people: int = Field(1, ge=0, le=500)
    start: time = time(8, 0)
    end: time = time(17, 0)
    days: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri")
    per_hour: int = Field(6, ge=1, le=200, description="calls or tasks each person does an hour")
    business_days_only: bool = Field(
        True, description="off on the site calendar's holidays and closures too"
    )

    @model_validator(mode="after")
    def _shift(self) -> Role:
        if self.start >= self.end:
            raise ValueError("a shift's start must be before its end")
        return self

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

    def earliest(self, high_risk: bool) -> int:
        if high_risk and self.high_risk_after_days is not None:
            return self.high_risk_after_days
        return self.after_days


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
    seed: int = 1

    @model_validator(mode="after")
    def _known_roles(self) -> StaffModel:
        if not all(0.0 <= p <= 1.0 for p in self.reach):
            raise ValueError("every reach chance must be between 0 and 1")
        for step_id, work in self.steps.items():
            if work.role is not None and work.role not in self.roles:
                raise ValueError(f"step {step_id!r} names role {work.role!r}, not in roles")
        return self

    def reach_chance(self, attempt: int) -> float:
        """The chance attempt number `attempt` (1 = the first) reaches the patient."""
        return self.reach[min(attempt, len(self.reach)) - 1]

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
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise StaffError(f"staff model {path}: {problems}") from None
