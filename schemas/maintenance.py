"""Inputs and results of the scheduled work: the daily digest and the consistency sweep."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel

DIGEST_FAILED = "DigestsFailed"  # send_digests' partial failure; details: its DigestResult


class DigestResult(BaseModel):
    teams: int
    delivered: int
    overdue: int
    due_today: int
    undelivered: list[str] = []  # teams whose digest did not go out today (after retries)


class Redelivery(BaseModel):
    """The answer to an operator's redelivery of one notification."""

    id: int
    delivered: bool
    already_delivered: bool = False
    failure: str | None = None  # why it still did not go out


class SweepReport(BaseModel):
    checked_at: AwareDatetime
    running_in_temporal: int
    active_in_projection: int
    republished: list[str] = []  # running, but the projection row was missing or stale
    closed: list[str] = []  # projection said active, the workflow had ended
    inbox_raw_removed: int = 0  # raw messages past retention removed (their rows stay)
    inbox_raw_due: bool = False  # more were due than one run removes: the next run continues
