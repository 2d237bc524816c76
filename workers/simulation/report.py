"""What a run achieved and cost: TCM eligibility, contact within 2 business days, visits
within 7 and 14 days, medication reconciliation, escalations by level and channel, pages,
and each role's work per day against its capacity. A rich table (two runs side by side
with their difference) and JSON."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from rich.console import Console
from rich.table import Table

from activities.business_calendar import BusinessCalendar
from schemas.outcome import day_after_discharge
from schemas.protocol import TcmElement
from schemas.protocol_library import load_library
from schemas.transition import StepState, StepStatus, TransitionState, TransitionStatus
from workers.simulation import counts
from workers.simulation.engine import RunResult
from workers.simulation.invariants import problems


@dataclass(frozen=True)
class Share:
    met: int
    of: int

    @property
    def percent(self) -> float | None:
        return round(100 * self.met / self.of, 1) if self.of else None

    def text(self) -> str:
        return "-" if self.percent is None else f"{self.percent}% ({self.met}/{self.of})"


@dataclass(frozen=True)
class DayWork:
    """A role's day: tasks needed (done and waiting), and hours needed against available."""

    day: date
    role: str
    needed: int
    hours_needed: float
    hours_available: float


@dataclass(frozen=True)
class Summary:
    protocols: str
    discharges: int
    cancelled: int
    tcm_eligible: Share
    tcm_99495: int
    tcm_99496: int
    contact_2_business_days: Share
    visit_7_days: Share
    visit_14_days: Share
    medication_reconciliation: Share
    escalations_by_level: dict[int, int]
    escalations_by_channel: dict[str, int]
    pages: int
    calls: int
    refused_updates: int
    workload: list[DayWork] = field(default_factory=list)
    days_over_capacity: int = 0
    longest_history: int = 0
    wall_seconds: float = 0.0
    invariant_problems: list[str] = field(default_factory=list)
    readmissions: int = 0  # transitions readmitted (their final states), not the feed's A01s
    refused: dict[str, int] = field(default_factory=dict)  # messages answered AE / AR
    simulated: str = ""  # the simulated days the run covered: what the report is "as of"
    visits_booked: int = 0  # SIU^S12 bookings the simulated schedulers sent
    no_shows: int = 0  # SIU^S26 the simulated clinic sent
    faults: list[dict[str, str | None]] = field(default_factory=list)  # --faults, as injected
    repaired_by_sweep: int = 0  # rows whose last write had given up, repaired from Temporal

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for name in (
            "tcm_eligible",
            "contact_2_business_days",
            "visit_7_days",
            "visit_14_days",
            "medication_reconciliation",
        ):
            share: Share = getattr(self, name)
            data[name] = {"met": share.met, "of": share.of, "percent": share.percent}
        data["workload"] = [{**asdict(w), "day": w.day.isoformat()} for w in self.workload]
        return data


def _element(final: TransitionState, element: TcmElement) -> StepState | None:
    return next((s for s in final.steps if s.tcm_element == element), None)


def summarize(result: RunResult, label: str | None = None) -> Summary:
    """`label`: how the run's protocol set is named (default: its folder)."""
    site = load_library(result.protocols_dir).site
    ran = [f for f in result.finals if f.status != TransitionStatus.CANCELLED]
    contact, visit7, visit14, medrec = [0, 0], [0, 0], [0, 0], [0, 0]
    for final in ran:
        calendar = site.calendar_for(final.facility)
        zone = calendar.zone()
        discharged = final.discharged_at.astimezone(zone).date()
        step = _element(final, TcmElement.INTERACTIVE_CONTACT)
        if step is not None:
            contact[1] += 1
            by = BusinessCalendar(calendar).add_business_days(discharged, 2)
            done = step.completed_at if step.status == StepStatus.COMPLETED else None
            contact[0] += done is not None and done.astimezone(zone).date() <= by
        step = _element(final, TcmElement.FACE_TO_FACE_VISIT)
        if step is not None:
            visit7[1] += 1
            visit14[1] += 1
            if step.status == StepStatus.COMPLETED and step.completed_at is not None:
                day = day_after_discharge(step.completed_at, final.discharged_at, zone)
                visit7[0] += day <= 7
                visit14[0] += day <= 14
        step = _element(final, TcmElement.MEDICATION_RECONCILIATION)
        if step is not None:
            medrec[1] += 1
            medrec[0] += step.status == StepStatus.COMPLETED
    tcm = [f.outcome.tcm for f in ran if f.outcome is not None and f.outcome.tcm.applicable]
    codes = Counter(t.code for t in tcm if t.eligible)
    levels = Counter(int(n["level"]) for n in result.notifications)
    channels = Counter(str(n["channel"]) for n in result.notifications)
    workload = [
        DayWork(
            day,
            role,
            load.needed,
            round(load.minutes_needed / 60, 2),
            round(load.minutes_available / 60, 2),
        )
        for day, roles in sorted(result.staff.load.items())
        for role, load in sorted(roles.items())
    ]
    return Summary(
        protocols=label or str(result.protocols_dir),
        discharges=len(result.finals),
        cancelled=len(result.finals) - len(ran),
        tcm_eligible=Share(sum(codes.values()), len(tcm)),
        tcm_99495=codes["99495"],
        tcm_99496=codes["99496"],
        contact_2_business_days=Share(*contact),
        visit_7_days=Share(*visit7),
        visit_14_days=Share(*visit14),
        medication_reconciliation=Share(*medrec),
        escalations_by_level=dict(sorted(levels.items())),
        escalations_by_channel=dict(sorted(channels.items())),
        pages=channels["page"],
        calls=sum(n for what, n in result.staff.actions.items() if what.startswith("call:")),
        refused_updates=sum(result.staff.refused.values()),
        workload=workload,
        days_over_capacity=len({w.day for w in workload if w.hours_needed > w.hours_available}),
        longest_history=max(result.history_lengths.values(), default=0),
        wall_seconds=round(result.wall_seconds, 1),
        invariant_problems=problems(result),
        readmissions=counts.ran(result.finals, result.acks.get("AA", 0)).readmissions,
        refused={code: n for code, n in sorted(result.acks.items()) if code != "AA"},
        simulated=result.stamps.period(site.calendar_zone()) if result.stamps else "",
        visits_booked=result.staff.sent_of("booking"),
        no_shows=result.staff.sent_of("no-show"),
        faults=[f.as_json() for f in result.faults],
        repaired_by_sweep=len(result.repaired),
    )


def measure_rows(summary: Summary) -> dict[str, str]:
    levels = summary.escalations_by_level
    rows = {
        "simulated days": summary.simulated,
        "discharges (cancelled)": f"{summary.discharges} ({summary.cancelled})",
        "readmissions": str(summary.readmissions),
        "messages refused (AE / AR)": " / ".join(
            str(summary.refused.get(code, 0)) for code in ("AE", "AR")
        ),
        "TCM eligible": summary.tcm_eligible.text(),
        "  99495 / 99496": f"{summary.tcm_99495} / {summary.tcm_99496}",
        "contact within 2 business days": summary.contact_2_business_days.text(),
        "visit within 7 days": summary.visit_7_days.text(),
        "visit within 14 days": summary.visit_14_days.text(),
        "medication reconciliation": summary.medication_reconciliation.text(),
        "escalations (all levels)": str(sum(levels.values())),
    }
    for level in (1, 2, 3):
        rows[f"  level {level}"] = str(levels.get(level, 0))
    rows["pages sent"] = str(summary.pages)
    rows["calls made"] = str(summary.calls)
    rows["visits booked (no-shows)"] = f"{summary.visits_booked} ({summary.no_shows})"
    rows["days demand exceeded capacity"] = str(summary.days_over_capacity)
    rows["longest history (events)"] = str(summary.longest_history)
    rows["rows repaired by the nightly sweep"] = str(summary.repaired_by_sweep)
    rows["wall time (s)"] = str(summary.wall_seconds)
    rows["invariants"] = (
        "all hold"
        if not summary.invariant_problems
        else (f"{len(summary.invariant_problems)} broken")
    )
    return rows


def difference(first: str, second: str) -> str:
    def number(text: str) -> float | None:
        head = text.split(" ")[0].rstrip("%")
        try:
            return float(head)
        except ValueError:
            return None

    a, b = number(first), number(second)
    if a is None or b is None or a == b:
        return ""
    delta = round(b - a, 1)
    unit = " pts" if first.split(" ")[0].endswith("%") else ""
    return f"{delta:+g}{unit}"


def outcome_table(summaries: list[Summary]) -> Table:
    table = Table(title="simulated outcomes")
    table.add_column("measure")
    for summary in summaries:
        table.add_column(summary.protocols, justify="right")
    if len(summaries) == 2:
        table.add_column("difference", justify="right")
    rows = [measure_rows(s) for s in summaries]
    for measure in rows[0]:
        cells = [r[measure] for r in rows]
        if len(rows) == 2:
            cells.append(difference(cells[0], cells[1]))
        table.add_row(measure, *cells)
    return table


def workload_table(summary: Summary) -> Table:
    roles = sorted({w.role for w in summary.workload})
    table = Table(title=f"hours of work per day (needed / available): {summary.protocols}")
    table.add_column("day")
    for role in roles:
        table.add_column(role, justify="right")
    by_day: dict[date, dict[str, DayWork]] = {}
    for work in summary.workload:
        by_day.setdefault(work.day, {})[work.role] = work
    for day, works in sorted(by_day.items()):
        cells = []
        for role in roles:
            entry = works.get(role)
            if entry is None:
                cells.append("")
                continue
            text = f"{entry.hours_needed:g} / {entry.hours_available:g}"
            over = entry.hours_needed > entry.hours_available
            cells.append(f"[red]{text}[/red]" if over else text)
        table.add_row(f"{day:%a %Y-%m-%d}", *cells)
    return table


def print_report(console: Console, summaries: list[Summary], *, workload: bool = True) -> None:
    console.print(outcome_table(summaries))
    for summary in summaries:
        if workload:
            console.print(workload_table(summary))
        for fault in summary.faults:
            console.print(
                f"fault ({summary.protocols}): {fault['kind']} at {fault['at']} until "
                f"{fault['until']}: {fault['how']}"
            )
        for problem in summary.invariant_problems:
            console.print(f"[red]invariant broken ({summary.protocols}):[/red] {problem}")
