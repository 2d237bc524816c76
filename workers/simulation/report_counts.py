"""The TCM report a care-management lead would pull for the run's discharge days
(store/reports.py, on the projection, at the end of the run) against what the engine's
transitions say themselves: the invariant "the reports' counts equal what the simulator
did"."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

import asyncpg

from schemas.protocol_library import ProtocolLibrary
from schemas.transition import TransitionState, TransitionStatus
from store import reports


async def tcm_report(
    pool: asyncpg.Pool, library: ProtocolLibrary, finals: list[TransitionState], now: datetime
) -> dict[str, Any]:
    """The report's summary (and its count of cancelled discharges) over the days the run's
    transitions were discharged; {} for a run without any."""
    if not finals:
        return {}
    zone = library.site.calendar_zone()
    days = [f.discharged_at.astimezone(zone).date() for f in finals]
    answer = await reports.report(pool, library, "tcm", min(days), max(days), now=now)
    return dict(answer["summary"]) | {"excluded_cancelled": answer["excluded_cancelled"]}


def differences(report: dict[str, Any], finals: list[TransitionState]) -> list[str]:
    """Where the report disagrees with the transitions' own outcomes, each a sentence."""
    if not finals:
        return []
    ran = [f for f in finals if f.status != TransitionStatus.CANCELLED]
    codes = Counter(
        f.outcome.tcm.code
        for f in ran
        if f.outcome is not None and f.outcome.tcm.applicable and f.outcome.tcm.eligible
    )
    expected: list[tuple[str, int]] = [
        ("discharges", len(ran)),
        ("excluded_cancelled", len(finals) - len(ran)),
        ("in_progress", 0),
        ("99495", codes["99495"]),
        ("99496", codes["99496"]),
    ]
    return [
        f"the TCM report counts {report.get(name)} {name.replace('_', ' ')} but the "
        f"transitions say {want}"
        for name, want in expected
        if report.get(name) != want
    ]
