"""Inputs and results of the scheduled work: the daily digest and the consistency sweep."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel


class DigestResult(BaseModel):
    teams: int
    delivered: int
    overdue: int
    due_today: int


class SweepReport(BaseModel):
    checked_at: AwareDatetime
    running_in_temporal: int
    active_in_projection: int
    republished: list[str] = []  # running, but the projection row was missing or stale
    closed: list[str] = []  # projection said active, the workflow had ended
