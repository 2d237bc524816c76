"""bench.timer_storm's comparison with the raw Temporal storm: ratios and the printed table."""

from __future__ import annotations

from bench.timer_storm import ratios, summary, table


def test_the_ratio_is_carebridge_lag_over_the_raw_lag_per_figure() -> None:
    ours = summary([float(n) for n in range(1, 101)])
    raw = summary([n / 2 for n in range(1, 101)])

    assert ours == {"p50": 51.0, "p99": 100.0, "max": 100.0}
    assert ratios(ours, raw) == {"p50": 2.0, "p99": 2.0, "max": 2.0}


def test_a_zero_raw_lag_gives_no_ratio_rather_than_a_division_error() -> None:
    assert ratios({"p50": 1.0}, {"p50": 0.0}) == {"p50": None}


def test_the_table_shows_ratio_then_both_lags_and_both_caches() -> None:
    result = {
        "transitions": 200,
        "worker_cached_workflows": 1000,
        "escalations_recorded": 200,
        "lag_s": {"p50": 3.0, "p99": 6.0, "max": 6.5},
        "raw": {
            "worker_cached_workflows": 200,
            "fired": 199,
            "lag_s": {"p50": 1.5, "p99": 4.0, "max": 5.0},
        },
        "ratio_to_raw": {"p50": 2.0, "p99": 1.5, "max": 1.3},
    }

    lines = table(result).splitlines()

    assert lines[2].split() == ["p99", "1.5", "6.0", "4.0"]
    assert "carebridge 1000, raw 200" in lines[-1]
    assert "raw 199 of 200" in lines[-1]
