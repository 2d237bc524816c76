"""One clock for every stamp: a simulated run a month ahead leaves only simulated times in
PostgreSQL (the inbox, the outbox, the projection, the timeline, the registry); the
production path, with no clock injected, still stamps the wall time; and the store takes
the time it is given (the projection's updated_at, the team view's "today"). The run's
report says which simulated days it covers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from schemas.maintenance import SweepReport
from schemas.protocol_library import load_library
from schemas.transition import ProjectionRecord, TimelineEvent, TransitionStatus
from schemas.worklist import CareManagerLoad
from store import inbox, projection, team, visit_events
from tests.helpers import a03, assert_eventually, transition_of
from tests.integration.conftest import RunningStack
from workers.runtime.services import field_cipher_for
from workers.runtime.settings import Settings
from workers.simulation import engine
from workers.simulation.feed import FeedSpec, generate
from workers.simulation.invariants import problems
from workers.simulation.report import summarize
from workers.simulation.session import first_day
from workers.simulation.staff import load_staff
from workers.worker import build_worker
from workflows.sweep import SweepWorkflow

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = ROOT / "protocols"
EXAMPLE_STAFF = ROOT / "docs" / "simulation" / "staff.yaml"
ZONE = load_library(PROTOCOLS).site.calendar_zone()
# What a run stamps that the engine used to take from the wall clock.
STAMPED = (
    "adt_inbox.received_at",
    "adt_inbox.processed_at",
    "notifications.created_at",
    "notifications.delivered_at",
    "transitions.updated_at",
    "transition_events.at",
    "patients.updated_at",
    "encounter_details.updated_at",
)


def hl7_time(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


@pytest.mark.timeout(240)
async def test_discharges_over_a_simulated_fortnight_a_month_ahead_leave_only_simulated_times(
    settings: Settings,
) -> None:
    # A few discharges over the first two weeks of a period starting a month after today, with
    # the example staff reaching nobody (contacts go overdue: escalations are written
    # and delivered); the transitions run their 30 days. Every time the run left in
    # PostgreSQL is inside that period.
    today = datetime.now(ZONE)
    start = first_day(None, ZONE, now=today + timedelta(days=28))
    feed = generate(FeedSpec(days=14, discharges_per_day=0.5, seed=7), start, ZONE)
    assert len({m.visit for m in feed}) >= 3 and feed[-1].at - feed[0].at > timedelta(days=7)

    staff = load_staff(EXAMPLE_STAFF).model_copy(update={"reach": (0.0,)})
    result = await engine.run(settings, PROTOCOLS, staff, feed, start)

    stamps = result.stamps
    assert stamps is not None and stamps.began == start
    assert stamps.ended > start + timedelta(days=30)  # the transitions' month has passed
    assert stamps.outside() == []
    assert set(STAMPED) <= set(stamps.ranges), sorted(stamps.ranges)
    earliest = min(low for column, (low, _) in stamps.ranges.items() if column in STAMPED)
    assert earliest >= start > today + timedelta(days=27)  # nothing stamped today
    assert problems(result) == []
    # The report is as of the simulated month, not of today.
    simulated = summarize(result).simulated
    assert simulated == f"{start.date()} to {stamps.ended.astimezone(ZONE).date()}"


async def test_without_an_injected_clock_the_stamps_are_the_wall_time(
    stack: RunningStack, settings: Settings
) -> None:
    # The production path: a discharge 11 days late arrives now, its arrived-late notice is
    # written to the worklist outbox and delivered there; every stamp is the current time.
    facility, visit = f"WALL{uuid.uuid4().hex[:6].upper()}", "V-WALL-1"
    before = datetime.now(UTC) - timedelta(seconds=1)
    discharged = hl7_time(datetime.now(UTC) - timedelta(days=11))
    answer = await stack.post_adt(a03(facility=facility, visit=visit, discharged=discharged))
    assert answer.status_code == 200, answer.text
    tid = transition_of(settings, facility, visit)
    pool = stack.services.pool

    async def delivered() -> asyncpg.Record:
        row = await pool.fetchrow(
            "SELECT created_at, delivered_at FROM notifications WHERE transition_id = $1", tid
        )
        assert row is not None and row["delivered_at"] is not None
        return row

    notice = await assert_eventually(delivered, within=30)
    after = datetime.now(UTC) + timedelta(seconds=1)
    stamps = {
        "notification created": notice["created_at"],
        "notification delivered": notice["delivered_at"],
        **await _one_row(
            pool,
            'SELECT received_at AS "inbox received", processed_at AS "inbox processed" '
            "FROM adt_inbox WHERE transition_id = $1",
            tid,
        ),
        **await _one_row(
            pool,
            'SELECT updated_at AS "projection updated" FROM transitions WHERE transition_id = $1',
            tid,
        ),
        **await _one_row(
            pool,
            'SELECT updated_at AS "registry updated" FROM encounter_details '
            "WHERE transition_id = $1",
            tid,
        ),
    }
    late = {what: at for what, at in stamps.items() if not before <= at <= after}
    assert late == {}, f"stamped outside {before} .. {after}"


async def _one_row(pool: asyncpg.Pool, query: str, tid: str) -> dict[str, datetime]:
    row = await pool.fetchrow(query, tid)
    assert row is not None, query
    return dict(row)


def record_with_a_call(at: datetime, facility: str, version: int = 1) -> ProjectionRecord:
    """An active transition's projection row whose timeline has one call made `at`."""
    tid = uuid.uuid4().hex[:24]
    return ProjectionRecord(
        transition_id=tid,
        encounter_key=f"enc-{tid}",
        facility=facility,
        protocol_id="discharge-home",
        protocol_version=1,
        status=TransitionStatus.ACTIVE,
        discharged_at=at - timedelta(hours=20),
        current_step=None,
        next_due_at=None,
        events=(TimelineEvent(seq=1, at=at, kind="call", actor="cm-clock"),),
        version=version,
    )


async def test_the_projection_row_is_stamped_at_the_time_given_else_at_the_wall_time(
    pool: asyncpg.Pool,
) -> None:
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    given = record_with_a_call(later, f"CLK{uuid.uuid4().hex[:6].upper()}")
    unstamped = record_with_a_call(later, given.facility)
    before = datetime.now(UTC) - timedelta(seconds=1)

    assert await projection.upsert(pool, given, at=later)
    assert await projection.upsert(pool, unstamped)
    # A newer version of the first row moves its stamp to the newer time.
    newer = given.model_copy(update={"version": 2, "events": ()})
    assert await projection.upsert(pool, newer, at=later + timedelta(hours=1))

    rows = {
        row["transition_id"]: row["updated_at"]
        for row in await pool.fetch(
            "SELECT transition_id, updated_at FROM transitions WHERE facility = $1",
            given.facility,
        )
    }
    assert rows[given.transition_id] == later + timedelta(hours=1)
    assert before <= rows[unstamped.transition_id] <= datetime.now(UTC) + timedelta(seconds=1)


async def test_the_team_view_counts_the_calls_of_the_day_it_is_asked_about(
    pool: asyncpg.Pool,
) -> None:
    # A call made on a simulated day 40 days ahead is a call made "today" on that day, and
    # not today.
    later = datetime.now(ZONE).replace(hour=11, minute=0, second=0, microsecond=0) + timedelta(
        days=40
    )
    record = record_with_a_call(later, f"CLK{uuid.uuid4().hex[:6].upper()}")
    assert await projection.upsert(pool, record, at=later)

    def calls(loads: list[CareManagerLoad]) -> dict[str | None, int]:
        return {load.owner: load.calls_made_today for load in loads}

    assert calls(await team.overview(pool, ZONE, record.facility, now=later)) == {
        None: 0,
        "cm-clock": 1,
    }
    assert calls(await team.overview(pool, ZONE, record.facility)) == {None: 0}


async def test_the_sweep_reports_the_time_of_the_worker_clock(
    temporal_env: WorkflowEnvironment, pool: asyncpg.Pool, settings: Settings
) -> None:
    # A worker given a clock three hours ahead: the sweep it runs says it checked then.
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)

    async def clock() -> datetime:
        return ahead

    async with build_worker(temporal_env.client, pool, settings, clock=clock):
        report: SweepReport = await temporal_env.client.execute_workflow(
            SweepWorkflow.run, id=f"sweep-{uuid.uuid4()}", task_queue=settings.task_queue
        )
    assert report.checked_at == ahead


async def test_the_inbox_and_a_kept_visit_event_are_stamped_at_the_times_given(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    # An A08 kept for its discharge, received and settled at simulated times.
    cipher = field_cipher_for(settings)
    received = datetime.now(UTC).replace(microsecond=0) + timedelta(days=40)
    settled = received + timedelta(hours=2)
    raw = a03(facility=f"CLK{uuid.uuid4().hex[:6].upper()}")
    entry = await inbox.receive(
        pool,
        cipher,
        raw=raw,
        sending_facility="CLOCK",
        control_id=uuid.uuid4().hex,
        message_type="ADT^A08",
        at=received,
    )
    await visit_events.keep(
        pool,
        inbox_id=entry.id,
        encounter_key=f"enc-{uuid.uuid4().hex}",
        event_type="A08",
        occurred_at=received,
        received_at=received,
    )
    await visit_events.settle(
        pool,
        entry.id,
        outcome=visit_events.Outcome.DELIVERED,
        decision="delivered to its transition",
        transition_id="t-clock",
        at=settled,
    )
    row = await pool.fetchrow(
        "SELECT i.received_at, v.settled_at FROM adt_inbox i "
        "JOIN pending_visit_events v ON v.inbox_id = i.id WHERE i.id = $1",
        entry.id,
    )
    assert row is not None
    assert (row["received_at"], row["settled_at"]) == (received, settled)
