"""`carebridge simulate --faults` on the real worker, intake and PostgreSQL, on the
time-skipping test server: PostgreSQL restarted (the embedded server really stopped and
started; a configured one's backends terminated) and the escalation webhook answering 503
for a simulated day, and the run's invariants still hold. A small run in `make test`; the
soak under faults is marked `long` (`make test-long`)."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest

from activities.business_calendar import BusinessCalendar
from schemas.protocol_library import load_library
from tests.integration.conftest import run_cli, simulate_env
from tests.integration.test_simulation import EXAMPLE_STAFF, working_monday
from workers.runtime.settings import Settings
from workers.simulation import engine, faults
from workers.simulation.feed import FeedSpec, generate
from workers.simulation.invariants import idempotency_key as key
from workers.simulation.invariants import problems
from workers.simulation.session import first_day
from workers.simulation.staff import StaffModel, load_staff

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = ROOT / "protocols"
SITE = load_library(PROTOCOLS).site
ZONE = SITE.calendar_zone()
CALENDAR = BusinessCalendar(SITE.calendar)

# Nobody is ever reached: every contact step climbs its ladder to the page (the webhook).
NOBODY_ANSWERS = StaffModel.model_validate(
    {
        "roles": {
            "care_manager": {"people": 1, "start": "08:00", "end": "17:00", "per_hour": 4},
            "pharmacist": {"people": 1, "start": "08:00", "end": "17:00", "per_hour": 4},
            "scheduler": {"people": 1, "start": "08:00", "end": "17:00", "per_hour": 4},
        },
        "reach": [0.0],
    }
)


def at(start: datetime, days: int, hour: int) -> datetime:
    return start + timedelta(days=days, hours=hour)


@pytest.mark.timeout(300)
async def test_a_restarted_postgres_a_killed_worker_and_a_failing_webhook_break_no_invariant(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Six home discharges on a Monday; nobody is reached, so each contact step, due at the
    # end of the second business day, climbs its ladder and pages the medical director (the
    # webhook) in the next business day or so. The webhook answers 503 from 10:00 on the
    # third business day after the discharges for a day, and the
    # embedded PostgreSQL is stopped on the Tuesday at 11:00 and started at a later stop
    # at least 15 simulated minutes on; the worker is killed on the Wednesday at 10:00,
    # with the contact steps' calls and deadlines in flight, and replaced.
    start = working_monday()
    spec = FeedSpec(days=1, discharges_per_day=6, weekday_pattern=(1.0,) * 7, a13_share=0.0)
    feed = generate(spec, start, ZONE)
    embedded = settings.model_copy(
        update={"database_url": None, "state_dir": tmp_path_factory.mktemp("sim")}
    )
    page_day = CALENDAR.add_business_days(start.date(), 3)
    bad_day = datetime.combine(page_day, time(10), tzinfo=ZONE)
    plan = [
        faults.Fault("postgres", at(start, 1, 11)),
        faults.Fault("worker", at(start, 2, 10)),
        faults.Fault("webhook", bad_day),
    ]

    result = await engine.run(embedded, PROTOCOLS, NOBODY_ANSWERS, feed, start, plan)

    assert problems(result) == []
    assert [(f.kind, f.how) for f in result.faults] == [
        ("postgres", "embedded PostgreSQL stopped and started"),
        ("worker", "worker killed without drain and a new one started"),
        ("webhook", "escalation webhook answered 503"),
    ]
    postgres, _, webhook = result.faults
    assert postgres.until is not None and postgres.until - postgres.at >= faults.POSTGRES_DOWN
    assert webhook.until is not None and webhook.until - webhook.at >= faults.WEBHOOK_DOWN
    assert len(result.finals) == 6 and result.unaccepted == 0
    refused = [r for r in result.webhook if r.status == 503]
    assert refused, "no page fell in the webhook's bad day"
    # Each page refused on the bad day was delivered later or is recorded as failed.
    pages = {key(n): n for n in result.notifications if n["transport"] == "webhook"}
    for request in refused:
        row = pages[request.idempotency_key]
        assert row["delivered_at"] is not None or row["failure"] is not None


@pytest.mark.long
@pytest.mark.timeout(1800)
async def test_a_simulated_month_under_faults_keeps_every_invariant(settings: Settings) -> None:
    # About 100 discharges over 10 days, run to the end of the last one's period (about 41
    # simulated days), with the faults --faults plans from the seed, on the configured
    # PostgreSQL (its backends terminated).
    start = first_day(None, ZONE)
    spec = FeedSpec(days=10, discharges_per_day=10, a13_share=0.03, seed=5)
    feed = generate(spec, start, ZONE)
    plan = faults.plan(5, start)
    result = await engine.run(settings, PROTOCOLS, load_staff(EXAMPLE_STAFF), feed, start, plan)

    assert problems(result) == []
    assert sorted(f.kind for f in result.faults) == sorted(faults.KINDS)
    assert len(result.finals) >= 80
    print(f"wall {result.wall_seconds:.0f} s; faults {[f.as_json() for f in result.faults]}")


async def test_simulate_faults_lists_the_faults_it_injected_in_json(
    settings: Settings, tmp_path: Path
) -> None:
    env = simulate_env(settings, tmp_path)
    answer = await run_cli(
        env,
        "simulate",
        "--days=1",
        "--discharges-per-day=2",
        f"--staff={EXAMPLE_STAFF}",
        f"--protocols={PROTOCOLS}",
        "--faults",
        "--json",
    )
    assert answer.exit_code == 0, answer.output
    [run] = json.loads(answer.output)["runs"]
    assert sorted(f["kind"] for f in run["faults"]) == sorted(faults.KINDS)
    postgres = next(f for f in run["faults"] if f["kind"] == "postgres")
    assert "terminated (configured server)" in postgres["how"]
    assert run["invariant_problems"] == []


def test_the_faults_are_planned_from_the_seed_on_weekdays_mid_morning() -> None:
    start = datetime(2031, 3, 17, tzinfo=ZONE)  # a Monday
    plan = faults.plan(3, start)
    assert plan == faults.plan(3, start) != faults.plan(4, start)
    assert sorted(f.kind for f in plan) == sorted(faults.KINDS)
    for fault in plan:
        local = fault.at.astimezone(ZONE)
        assert local.weekday() < 5 and 10 <= local.hour < 13
        assert 2 <= (local.date() - start.date()).days < 15
    assert len({f.at.date() for f in plan}) == len(plan)
