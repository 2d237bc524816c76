"""`carebridge simulate --html FILE`: the report as one self-contained HTML file (inline CSS
and SVG, no scripts, nothing fetched, so it opens offline and can be mailed): the outcomes of
each protocol set side by side with the difference, and each role's work per day against its
capacity with the days it was exceeded marked; every chart has its numbers in a table."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from workers.simulation.report import DayWork, Share, Summary, difference, measure_rows
from workers.simulation.report_charts import Series, side_by_side_chart, workload_chart

TEMPLATES = Path(__file__).resolve().parent / "templates"
UNIT = "hours"  # report.DayWork: hours of work needed and available
SHARES = (
    ("TCM eligible", "tcm_eligible"),
    ("contact in 2 business days", "contact_2_business_days"),
    ("visit within 7 days", "visit_7_days"),
    ("visit within 14 days", "visit_14_days"),
    ("medication reconciliation", "medication_reconciliation"),
)
COUNTS = ("escalations level 1", "escalations level 2", "escalations level 3", "pages sent")


@dataclass(frozen=True)
class Row:
    cells: list[str]
    over: bool = False


@dataclass(frozen=True)
class TableData:
    head: list[str]
    rows: list[Row] = field(default_factory=list)


@dataclass(frozen=True)
class RoleChart:
    name: str
    chart: Markup
    table: TableData


@dataclass(frozen=True)
class RunView:
    label: str
    problems: list[str]
    over_days: int
    roles: list[RoleChart]


def _heads(summaries: list[Summary], first: str) -> list[str]:
    head = [first, *(s.protocols for s in summaries)]
    return [*head, "difference"] if len(summaries) == 2 else head


def _with_difference(cells: list[str]) -> list[str]:
    return [*cells, difference(cells[1], cells[2])] if len(cells) == 3 else cells


def _counts(summary: Summary) -> list[int]:
    levels = summary.escalations_by_level
    return [levels.get(1, 0), levels.get(2, 0), levels.get(3, 0), summary.pages]


def _role_chart(summary: Summary, run: int, role: str) -> RoleChart:
    works: list[DayWork] = sorted(
        (w for w in summary.workload if w.role == role), key=lambda w: w.day
    )
    chart = workload_chart(
        f"work-{run}-{role}",
        f"{role.replace('_', ' ')}: {UNIT} of work needed and available per day",
        [w.day for w in works],
        [w.hours_needed for w in works],
        [w.hours_available for w in works],
        unit=UNIT,
    )
    rows = [
        Row(
            [
                f"{w.day:%a %Y-%m-%d}",
                f"{w.hours_needed:g}",
                f"{w.hours_available:g}",
                str(w.needed),
                _exceeded(w),
            ],
            over=w.hours_needed > w.hours_available,
        )
        for w in works
    ]
    head = ["day", f"{UNIT} needed", f"{UNIT} available", "tasks needed", "exceeded"]
    return RoleChart(role, Markup(chart), TableData(head, rows))


def _exceeded(work: DayWork) -> str:
    over = work.hours_needed - work.hours_available
    return f"by {round(over, 2):g} h" if over > 0 else ""


def render(summaries: list[Summary], *, subtitle: str = "") -> str:
    """The report's HTML for one run or a comparison (the first set is the base)."""
    if not summaries:
        raise ValueError("a report needs at least one run")
    shares: list[list[Share]] = [[getattr(s, name) for _, name in SHARES] for s in summaries]
    shares_chart = side_by_side_chart(
        "shares",
        "Outcomes per protocol set (% of the transitions each applies to)",
        [label for label, _ in SHARES],
        [
            Series(s.protocols, [x.percent for x in row])
            for s, row in zip(summaries, shares, strict=True)
        ],
        unit="% of transitions",
        peak=100,
    )
    counts = [_counts(s) for s in summaries]
    counts_chart = side_by_side_chart(
        "counts",
        "Escalations by level and pages per protocol set",
        list(COUNTS),
        [
            Series(s.protocols, [float(n) for n in row])
            for s, row in zip(summaries, counts, strict=True)
        ],
        unit="count",
    )
    share_table = TableData(
        _heads(summaries, "measure"),
        [
            Row(_with_difference([label, *(row[i].text() for row in shares)]))
            for i, (label, _) in enumerate(SHARES)
        ],
    )
    count_table = TableData(
        _heads(summaries, "measure"),
        [
            Row(_with_difference([label, *(str(row[i]) for row in counts)]))
            for i, label in enumerate(COUNTS)
        ],
    )
    rows = [measure_rows(s) for s in summaries]
    measures = TableData(
        _heads(summaries, "measure"),
        [Row(_with_difference([m, *(r[m] for r in rows)])) for m in rows[0]],
    )
    runs = [
        RunView(
            s.protocols,
            s.invariant_problems,
            s.days_over_capacity,
            [_role_chart(s, n, role) for role in sorted({w.role for w in s.workload})],
        )
        for n, s in enumerate(summaries, start=1)
    ]
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
    )
    names = " against ".join(s.protocols for s in summaries)
    return environment.get_template("report.html").render(
        title=f"carebridge simulation: {names}",
        subtitle=subtitle or f"{summaries[0].discharges} simulated discharges a run",
        runs=runs,
        any_problems=any(s.invariant_problems for s in summaries),
        shares_chart=Markup(shares_chart),
        counts_chart=Markup(counts_chart),
        share_table=share_table,
        count_table=count_table,
        measures=measures,
        unit=UNIT,
    )


def write(path: Path, summaries: list[Summary], *, subtitle: str = "") -> Path:
    """Write the report to `path` (its folder must exist)."""
    path.write_text(render(summaries, subtitle=subtitle), encoding="utf-8")
    return path
