"""The open steps of the active transitions as the simulated staff read them each hour of
their shifts. A projection row changes only with a newer version (store/projection.py), so a
transition's steps are parsed once a version, and a row whose version the reader already has
comes back without its steps: an hour's read of a month's transitions parses only those that
moved since the last one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from schemas.protocol import RiskTier, StepKind
from schemas.protocol_library import ProtocolLibrary
from schemas.social_needs import HrsnDomain
from schemas.transition import StepStatus, StepSummary
from workers.simulation.staff import StaffModel, StepWork

QUERY = """
SELECT t.transition_id, t.protocol_id, t.protocol_version, t.risk_tier, t.discharged_at,
       t.version, CASE WHEN k.version = t.version THEN NULL ELSE t.steps END AS steps
FROM transitions t
LEFT JOIN unnest($2::text[], $3::bigint[]) AS k(transition_id, version)
       ON k.transition_id = t.transition_id
WHERE t.status = 'active' AND t.transition_id = ANY($1::text[])
"""


@dataclass(frozen=True)
class OpenStep:
    """An open step the staff may do (not an automated one, nor a referral with no resource
    in the directory), before the hour's checks: `earliest`, the local day its work starts
    unless an escalation brings it forward."""

    transition_id: str
    step: StepSummary
    kind: StepKind
    role: str
    work: StepWork
    discharged_at: datetime
    high_risk: bool
    earliest: date
    referral_for: HrsnDomain | None


class OpenSteps:
    def __init__(self, model: StaffModel, library: ProtocolLibrary, zone: ZoneInfo) -> None:
        self._model = model
        self._library = library
        self._zone = zone
        self._known: dict[str, tuple[int, list[OpenStep]]] = {}  # id -> (version, its steps)

    async def read(self, pool: asyncpg.Pool, transition_ids: list[str]) -> list[OpenStep]:
        """The open steps of the active transitions among `transition_ids`, in step order."""
        rows = await pool.fetch(
            QUERY,
            transition_ids,
            list(self._known),
            [version for version, _ in self._known.values()],
        )
        known: dict[str, tuple[int, list[OpenStep]]] = {}
        found: list[OpenStep] = []
        for row in rows:
            tid, version = row["transition_id"], row["version"]
            cached = self._known.get(tid)
            if row["steps"] is None and cached is not None and cached[0] == version:
                steps = cached[1]
            else:
                steps = self._parse(row)
            known[tid] = (version, steps)
            found.extend(steps)
        self._known = known  # closed transitions drop out
        return found

    def _parse(self, row: asyncpg.Record) -> list[OpenStep]:
        protocol = self._library.versions[row["protocol_id"]][row["protocol_version"]]
        rules = {rule.id: rule for rule in protocol.steps}
        high_risk = row["risk_tier"] == RiskTier.HIGH.value
        discharge_day = row["discharged_at"].astimezone(self._zone).date()
        raw_steps = row["steps"]
        if raw_steps is None:
            return []
        parsed = []
        for raw in json.loads(raw_steps) if isinstance(raw_steps, str) else raw_steps:
            step = StepSummary.model_validate(raw)
            rule = rules.get(step.step_id)
            if step.status != StepStatus.OPEN or rule is None:
                continue
            if rule.kind == StepKind.AUTOMATED:
                continue  # the engine's own
            if rule.kind == StepKind.REFERRAL and (
                rule.referral_for is None or not self._library.resources_for(rule.referral_for)
            ):
                continue  # no resource in the directory to refer to
            role, work = self._model.work_for(step.step_id, rule.owner_role)
            parsed.append(
                OpenStep(
                    row["transition_id"],
                    step,
                    rule.kind,
                    role,
                    work,
                    row["discharged_at"],
                    high_risk,
                    discharge_day + timedelta(days=work.earliest(high_risk)),
                    rule.referral_for,
                )
            )
        return parsed
