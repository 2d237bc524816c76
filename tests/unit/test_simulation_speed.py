"""What keeps a month's simulation fast without changing it: the run's worker has room for
every transition of the feed, and the bench's figures are computed from the runs' own."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bench.simulate import figures
from tests.unit.test_simulation_html import summary
from workers.runtime.settings import Settings
from workers.simulation.engine import cache_size
from workers.simulation.feed import FeedSpec, generate

ZONE = ZoneInfo("America/New_York")
MONDAY = datetime(2031, 3, 17, tzinfo=ZONE)  # a clock the test owns


def test_a_months_feed_fits_in_the_workers_cache_and_a_small_one_keeps_the_default() -> None:
    month = generate(FeedSpec(days=30, discharges_per_day=60), MONDAY, ZONE)
    discharges = sum(m.trigger == "A03" for m in month)
    assert discharges > Settings().worker_cached_workflows  # why the run sizes its own cache
    assert cache_size(Settings(), month) > discharges
    week = generate(FeedSpec(days=7, discharges_per_day=5), MONDAY, ZONE)
    assert cache_size(Settings(), week) == Settings().worker_cached_workflows


def test_the_bench_reports_simulated_days_per_wall_minute_and_transitions_per_second() -> None:
    run = summary("protocols", contact=80, extra=0)  # 120 discharges in 61.5 s
    speed = figures(run, days=61)
    assert speed["simulated_days_per_wall_minute"] == round(61 / (61.5 / 60), 1) == 59.5
    assert speed["transitions_per_wall_second"] == round(120 / 61.5, 2) == 1.95
    assert speed["invariant_problems"] == []
