"""Scheduled work: the daily digest per care team, and the consistency sweep that repairs the
projection from Temporal (the source of truth), reports the drift it found, and then removes
the inbox's raw messages past retention (store/inbox_retention.py), in bounded batches."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.channels import Channels, Message
from activities.notifications import NOT_CONFIGURED, describe_failure
from activities.projection_repair import repair_ended
from schemas import keys
from schemas.clock import Clock, wall_clock
from schemas.maintenance import DIGEST_FAILED, DigestResult, SweepReport
from schemas.site import NotificationConfig
from store.inbox_retention import purge_expired

log = structlog.get_logger(__name__)


class MaintenanceActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        client: Client,
        channels: Channels,
        config: NotificationConfig,
        zone: ZoneInfo,
        base_url: str,
        inbox_retention_days: int = 90,
        clock: Clock = wall_clock,
    ) -> None:
        """`clock`: the day a digest is for, and the stamps of the digest and sweep rows."""
        self._pool = pool
        self._clock = clock
        self._inbox_retention_days = inbox_retention_days
        self._client = client
        self._channels = channels
        self._config = config
        self._zone = zone
        self._base_url = base_url.rstrip("/")

    @activity.defn(name="send_digests")
    async def send_digests(self) -> DigestResult:
        """One message per care team (the practice's, else the facility): its transitions
        with an overdue step, then those with a step due today (each step, not only the
        next one due)."""
        today = (await self._clock()).astimezone(self._zone).date()
        start = datetime.combine(today, time(0), tzinfo=self._zone)
        rows = await self._pool.fetch(
            """
            SELECT * FROM (
                SELECT COALESCE(ct.team, t.facility) AS team, t.transition_id, t.next_due_at,
                       t.overdue_steps, t.escalation_level,
                       ARRAY(SELECT e ->> 'step_id' FROM jsonb_array_elements(t.steps) AS e
                             WHERE e ->> 'status' = 'open' AND e ->> 'overdue_since' IS NULL
                               AND (e ->> 'due_at')::timestamptz >= $1
                               AND (e ->> 'due_at')::timestamptz < $2) AS due_today_steps
                FROM transitions t
                LEFT JOIN care_teams ct ON ct.transition_id = t.transition_id
                WHERE t.status = 'active'
            ) AS active
            WHERE cardinality(overdue_steps) > 0 OR cardinality(due_today_steps) > 0
            ORDER BY team, escalation_level DESC, next_due_at
            """,
            start,
            start + timedelta(days=1),
        )
        teams: dict[str, list[asyncpg.Record]] = defaultdict(list)
        for row in rows:
            teams[row["team"]].append(row)
        delivered = overdue_total = today_total = 0
        failed: list[str] = []
        sent_before = {
            r["team"]
            for r in await self._pool.fetch(
                "SELECT team FROM digest_deliveries WHERE day = $1 AND delivered_at IS NOT NULL",
                today,
            )
        }
        for team, entries in teams.items():
            overdue = [r for r in entries if r["overdue_steps"]]
            due_today = [r for r in entries if r["due_today_steps"]]  # also if one is overdue
            overdue_total += len(overdue)
            today_total += len(due_today)
            if team in sent_before:  # this activity's earlier attempt, or an earlier run today
                delivered += 1
                continue
            message = self._digest(team, today, overdue, due_today)
            failure: str | None = None
            try:
                sent = await self._channels.deliver(self._config.digest_transport, message)
            except Exception as exc:  # the other teams still get theirs; retried below
                sent, failure = False, describe_failure(exc)
                failed.append(team)
            await self._pool.execute(
                """
                INSERT INTO digest_deliveries (team, day, delivered_at, failure, updated_at)
                VALUES ($1, $2, CASE WHEN $3 THEN $5::timestamptz END, $4, $5)
                ON CONFLICT (team, day) DO UPDATE SET delivered_at = EXCLUDED.delivered_at,
                    failure = EXCLUDED.failure, updated_at = EXCLUDED.updated_at
                """,
                team,
                today,
                sent,
                None if sent else failure or NOT_CONFIGURED,
                await self._clock(),
            )
            delivered += sent
        log.info("digest.sent", teams=len(teams), delivered=delivered, failed=len(failed))
        result = DigestResult(
            teams=len(teams),
            delivered=delivered,
            overdue=overdue_total,
            due_today=today_total,
            undelivered=sorted(failed),
        )
        if failed:  # Temporal retries within the workflow's bound; sent teams are skipped
            raise ApplicationError(
                f"{len(failed)} of {len(teams)} digests failed",
                result.model_dump(mode="json"),
                type=DIGEST_FAILED,
            )
        return result

    def _digest(
        self,
        team: str,
        today: date,
        overdue: list[asyncpg.Record],
        due_today: list[asyncpg.Record],
    ) -> Message:
        lines = [f"carebridge digest for {team}, {today.isoformat()}", ""]
        for title, group, steps in (
            ("Overdue", overdue, "overdue_steps"),
            ("Due today", due_today, "due_today_steps"),
        ):
            lines.append(f"{title}: {len(group)}")
            lines += [
                f"  {r['transition_id']}  {', '.join(r[steps])}  level "
                f"{r['escalation_level']}  {self._base_url}/ui/transitions/{r['transition_id']}"
                for r in group
            ]
        return Message(
            subject=f"[carebridge] {team}: {len(overdue)} overdue, {len(due_today)} due today",
            text="\n".join(lines) + "\n",
            payload={
                "type": "digest",
                "team": team,
                "date": today.isoformat(),
                "overdue": [r["transition_id"] for r in overdue],
                "due_today": [r["transition_id"] for r in due_today],
            },
            idempotency_key=f"digest:{team}:{today.isoformat()}",
            recipients=self._config.recipients.get(team, ()),
        )

    @activity.defn(name="sweep_projection")
    async def sweep_projection(self) -> SweepReport:
        """Compare, then repair: running workflows republish their row; rows of ended
        workflows take the final state (activities/projection_repair.py)."""
        # The database first: visibility is eventually consistent, so a transition that is
        # active here may not be listed as running yet; it is described before it is closed.
        active = {
            r["transition_id"]
            for r in await self._pool.fetch(
                "SELECT transition_id FROM transitions WHERE status = 'active'"
            )
        }
        running = {
            wf.id.removeprefix("transition-")
            async for wf in self._client.list_workflows(
                "WorkflowType = 'TransitionWorkflow' AND ExecutionStatus = 'Running'"
            )
        }
        known = {
            r["transition_id"]
            for r in await self._pool.fetch(
                "SELECT transition_id FROM transitions WHERE transition_id = ANY($1::text[])",
                sorted(running),
            )
        }
        republished = sorted(running - known)
        for transition in republished:
            await self._client.get_workflow_handle(keys.workflow_id(transition)).signal("republish")
        closed = await repair_ended(self._pool, self._client, sorted(active - running), self._clock)
        # After the repair, so a transition just found closed counts from its closure.
        purge = await purge_expired(
            self._pool, retention_days=self._inbox_retention_days, now=await self._clock()
        )
        report = SweepReport(
            checked_at=(await self._clock()).astimezone(self._zone),
            running_in_temporal=len(running),
            active_in_projection=len(active),
            republished=republished,
            closed=closed,
            inbox_raw_removed=purge.removed,
            inbox_raw_due=purge.more,
        )
        log.info(
            "sweep.done",
            republished=len(republished),
            closed=len(closed),
            inbox_raw_removed=purge.removed,
            inbox_raw_due=purge.more,
        )
        return report
