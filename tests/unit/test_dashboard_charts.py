"""The dashboard's bar chart: a percentage of nothing is 'n/a' with no bar (never 0%), and a
percentage shows its denominator."""

from __future__ import annotations

from workers.web.charts import bar_chart


def test_a_percentage_of_nothing_reads_n_a_with_no_bar() -> None:
    svg = bar_chart("contacted", ["12-01", "12-02"], [None, 50.0], unit="%", peak=100, of=[0, 2])
    assert svg.count("<rect") == 1
    assert ">n/a</text>" in svg and ">0%" not in svg


def test_a_percentage_shows_its_denominator() -> None:
    svg = bar_chart("visits", ["within 7 days"], [66.7], unit="%", peak=100, of=[3])
    assert "66.7% of 3" in svg


def test_a_month_of_bars_keeps_the_denominator_in_the_tooltip() -> None:
    labels = [f"d{n}" for n in range(30)]
    svg = bar_chart("contacted", labels, [50.0] * 30, unit="%", peak=100, of=[2] * 30)
    assert "<title>d0: 50% of 2</title>" in svg and ">50% of 2</text>" not in svg
