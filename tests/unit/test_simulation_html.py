"""`carebridge simulate --html`: the report built from Summaries made by hand (no engine run):
both protocol sets side by side with the difference, a chart per role per day with the days
over capacity marked, every number of the Summary in a table, and nothing fetched."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from workers.simulation.report import DayWork, Share, Summary
from workers.simulation.report_charts import ticks
from workers.simulation.report_html import render, write

FIRST = date(2030, 1, 7)  # a Monday on the test's own calendar
ROLES = {"care_manager": 40, "pharmacist": 16, "scheduler": 24}


def workload(days: int, extra: int) -> list[DayWork]:
    """Each role's work per day (tasks, hours at 30 minutes a task): a weekly wave, `extra`
    tasks more on Mondays (more hours than available)."""
    work = []
    for n in range(days):
        day = FIRST + timedelta(days=n)
        weekend = day.weekday() >= 5
        for role, capacity in ROLES.items():
            needed = (capacity * 3 // 4 + n % 5) + (extra if day.weekday() == 0 else 0)
            hours = 0.0 if weekend else needed / 2
            work.append(
                DayWork(
                    day, role, 0 if weekend else needed, hours, 0.0 if weekend else capacity / 2
                )
            )
    return work


def summary(label: str, *, contact: int, extra: int, problems: list[str] | None = None) -> Summary:
    over = {w.day for w in workload(28, extra) if w.hours_needed > w.hours_available}
    return Summary(
        protocols=label,
        discharges=120,
        cancelled=3,
        tcm_eligible=Share(contact - 4, 100),
        tcm_99495=contact - 20,
        tcm_99496=16,
        contact_2_business_days=Share(contact, 100),
        visit_7_days=Share(31, 40),
        visit_14_days=Share(38, 40),
        medication_reconciliation=Share(97, 100),
        escalations_by_level={1: 30 - contact // 10, 2: 7, 3: 2},
        escalations_by_channel={"worklist": 37, "page": 2},
        pages=2 + extra,
        calls=250,
        refused_updates=0,
        workload=workload(28, extra),
        days_over_capacity=len(over),
        longest_history=412,
        wall_seconds=61.5,
        invariant_problems=problems or [],
    )


def comparison() -> list[Summary]:
    return [
        summary("protocols", contact=80, extra=0),
        summary("docs/simulation/contact-1-business-day", contact=92, extra=30),
    ]


class Page(HTMLParser):
    """The tags, attributes and text of a page, for assertions."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())

    def all(self, tag: str, **having: str) -> list[dict[str, str | None]]:
        return [
            attrs
            for name, attrs in self.tags
            if name == tag and all(attrs.get(k.rstrip("_")) == v for k, v in having.items())
        ]


def test_the_report_holds_both_sets_side_by_side_with_the_difference() -> None:
    html = render(comparison())
    page = Page(html)
    assert "protocols" in page.text and "docs/simulation/contact-1-business-day" in page.text
    # the outcome chart has a bar per set per measure, labelled with the value
    assert len(page.all("rect", class_="bar set-a")) == 5 + 4 + 2  # shares, counts, legends
    assert len(page.all("rect", class_="bar set-b")) == 5 + 4 + 2
    for text in ("80.0% (80/100)", "92.0% (92/100)", "+12 pts", "76.0% (76/100)", "88.0% (88/100)"):
        assert text in page.text, text
    # pages 2 against 32; level 1 escalations 22 against 21
    assert "+30" in page.text and "-1" in page.text


def test_every_role_has_a_day_chart_with_the_days_over_capacity_marked() -> None:
    summaries = comparison()
    page = Page(render(summaries))
    charts = page.all("svg", role="img")
    assert len(charts) == 2 + 2 * len(ROLES)  # two outcome charts, a day chart per role per set
    # the base set never exceeds capacity; the other exceeds it on each Monday for every role
    mondays = sorted({w.day for w in summaries[1].workload if w.day.weekday() == 0})
    bands = page.all("rect", class_="over-band")
    assert len(bands) == len(mondays) * len(ROLES)
    assert {b["data-day"] for b in bands} == {d.isoformat() for d in mondays}
    assert len(page.all("rect", class_="bar over")) == len(bands)
    # each chart is named for screen readers and has its axes labelled
    for chart in charts:
        labels = str(chart["aria-labelledby"]).split()
        assert len(labels) == 2 and all(
            page.all("title", id=x) or page.all("desc", id=x) for x in labels
        )
    assert page.text.count("simulated day") == 2 * len(ROLES)
    ids = [str(attrs["id"]) for _, attrs in page.tags if "id" in attrs]
    assert len(ids) == len(set(ids)) and "workload-2-pharmacist" in ids
    assert f"{summaries[1].days_over_capacity} day(s) the work needed exceeded" in " ".join(
        page.text
    )


def test_every_number_of_the_workload_is_in_a_table_under_its_chart() -> None:
    summaries = comparison()
    page = Page(render(summaries))
    joined = " | ".join(page.text)
    for work in summaries[1].workload:
        day = f"{work.day:%a %Y-%m-%d}"
        cells = f"{day} | {work.hours_needed:g} | {work.hours_available:g} | {work.needed}"
        assert cells in joined, cells
    monday = summaries[1].workload[0]
    over = monday.hours_needed - monday.hours_available
    assert f"{monday.needed} | by {over:g} h" in joined and over > 0


def test_the_report_is_self_contained_with_no_script_and_nothing_fetched(tmp_path: Path) -> None:
    html = write(tmp_path / "report.html", comparison()).read_text()
    page = Page(html)
    assert not page.all("script") and not page.all("link") and not page.all("img")
    assert not re.search(r'\b(src|href)="', html)
    assert "url(" not in html and "@import" not in html


def test_a_broken_invariant_is_named_at_the_top_of_the_report() -> None:
    broken = summary("protocols", contact=80, extra=0, problems=["3 transitions never closed"])
    page = Page(render([broken]))
    assert "3 transitions never closed" in page.text
    assert not page.all("p", id="invariants")
    assert page.all("p", id="invariants") == [] and page.all("div", id="problems-1")


def test_one_run_has_no_difference_column_and_labels_are_escaped() -> None:
    alone = summary("<b>odd</b> & folder", contact=80, extra=0)
    html = render([alone])
    assert "difference" not in html
    assert "<b>odd</b>" not in html and "&lt;b&gt;odd&lt;/b&gt; &amp; folder" in html


def test_no_runs_is_refused_in_a_sentence() -> None:
    with pytest.raises(ValueError, match="at least one run"):
        render([])


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        (0, [0.0, 1.0]),
        (1, [0.0, 0.25, 0.5, 0.75, 1.0]),
        (37, [0, 10, 20, 30, 40]),
        (100, [0, 25, 50, 75, 100]),
    ],
)
def test_axis_ticks_are_round_and_reach_the_top(top: float, expected: list[float]) -> None:
    assert ticks(top) == expected
