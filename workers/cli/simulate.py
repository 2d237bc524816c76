"""`carebridge simulate`: a generated feed (or a recorded one replayed, `--feed`) and a staff
model run through the real engine on Temporal's time-skipping test server (weeks in
minutes), against one protocol folder or two (`--compare`), with the outcomes, escalations
and work per day they lead to."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from workers.cli.app import app, console, err_console, run_command
from workers.runtime.settings import Settings

if TYPE_CHECKING:
    from workers.simulation.report import Summary


def _weights(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"not 7 numbers separated by commas: {text!r}") from None


def _mix(text: str) -> dict[str, float]:
    mix = {}
    for part in text.split(","):
        code, _, share = part.partition("=")
        try:
            mix[code.strip()] = float(share)
        except ValueError:
            raise typer.BadParameter(
                f"not disposition=share pairs like 01=0.8,06=0.2: {text!r}"
            ) from None
    return mix


GENERATION_OPTIONS = (
    "days",
    "discharges_per_day",
    "weekday_pattern",
    "dispositions",
    "high_risk_share",
    "a13_share",
    "readmission_share",
    "a08_share",
    "seed",
)


def generation_options_given(context: typer.Context) -> list[str]:
    """The feed-generating options given (on the command line, not left at their default)."""
    sources = {name: context.get_parameter_source(name) for name in GENERATION_OPTIONS}
    return [
        "--" + name.replace("_", "-")
        for name, source in sources.items()
        if source is not None and source.name != "DEFAULT"
    ]


@app.command()
def simulate(
    context: typer.Context,
    staff: Path = typer.Option(..., help="the staff model (YAML; see docs/simulation/staff.yaml)"),
    days: int = typer.Option(30, min=1, max=366, help="days of discharges"),
    discharges_per_day: float = typer.Option(40.0, min=0.1, help="on an average weekday"),
    protocols: Path | None = typer.Option(
        None, help="the protocol folder (default: CAREBRIDGE_PROTOCOLS_DIR)"
    ),
    compare: Path | None = typer.Option(
        None,
        help="a second protocol folder, laid over --protocols (it may hold only the files it "
        "changes): the same feed and staff run against it too",
    ),
    weekday_pattern: str = typer.Option(
        "1.15,1.1,1.05,1.05,1.2,0.75,0.7", help="discharge weights Monday..Sunday"
    ),
    dispositions: str = typer.Option("01=0.8,06=0.15,07=0.05", help="PV1-36 mix"),
    high_risk_share: float = typer.Option(
        0.3, min=0, max=1, help="share of long stays with heart failure, COPD, diabetes (LACE high)"
    ),
    a13_share: float = typer.Option(0.02, min=0, max=1, help="share cancelled by an A13"),
    readmission_share: float = typer.Option(
        0.0, min=0, max=1, help="share readmitted (A01, then its own A03) 1-25 days later"
    ),
    a08_share: float = typer.Option(
        0.0, min=0, max=1, help="share with an A08 demographic update hours after discharge"
    ),
    seed: int = typer.Option(1, help="the same seed gives the same feed"),
    start: str | None = typer.Option(
        None, help="the first simulated day, YYYY-MM-DD (default: next Monday); not in the past"
    ),
    feed: Path | None = typer.Option(
        None,
        help="replay a file or folder of ER7 messages instead of generating a feed: their "
        "relative timing kept, shifted so the first lands on the start day",
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    faults: bool = typer.Option(
        False,
        "--faults",
        help="inject faults at instants from --seed: PostgreSQL restarted (the embedded one "
        "stopped and started; a configured one's backends terminated) and the escalation "
        "webhook answering 503 for a simulated day; the report lists them",
    ),
    html: Path | None = typer.Option(
        None,
        "--html",
        help="also write the report with its charts to this file (self-contained HTML)",
        dir_okay=False,
    ),
) -> None:
    """Simulate discharges and staff through the real worker, intake and PostgreSQL in
    accelerated time; report TCM outcomes, escalations, pages and work per day."""
    from workers.simulation.feed import FeedSpec
    from workers.simulation.staff import StaffError, load_staff

    if feed is not None and (given := generation_options_given(context)):
        err_console.print(
            f"[red]error:[/] --feed replays a recorded feed, so it cannot be combined with "
            f"{', '.join(given)}, which generate one."
        )
        raise typer.Exit(1)
    try:
        model = load_staff(staff)
        spec: FeedSpec | Path = (
            feed
            if feed is not None
            else FeedSpec(
                days=days,
                discharges_per_day=discharges_per_day,
                weekday_pattern=_weights(weekday_pattern),
                dispositions=_mix(dispositions),
                high_risk_share=high_risk_share,
                a13_share=a13_share,
                seed=seed,
                readmission_share=readmission_share,
                a08_share=a08_share,
            )
        )
        first = date.fromisoformat(start) if start else None
    except (StaffError, ValueError) as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None
    if compare is not None and not compare.is_dir():
        err_console.print(f"[red]error:[/] protocol folder {compare} does not exist")
        raise typer.Exit(1)
    if html is not None and not html.parent.is_dir():
        err_console.print(f"[red]error:[/] folder {html.parent} does not exist (for --html)")
        raise typer.Exit(1)

    async def main(settings: Settings) -> list[Summary]:
        from workers.runtime.logs import configure_logging
        from workers.simulation.session import simulate_sets

        # A month of escalations to unconfigured channels would bury the report in warnings.
        configure_logging("ERROR", settings.log_format)

        return await simulate_sets(
            settings, protocols or settings.protocols_dir, compare, model, spec, first, faults
        )

    summaries = run_command(main)
    if as_json:
        console.print_json(json.dumps({"runs": [s.as_json() for s in summaries]}))
    else:
        from workers.simulation.report import print_report

        print_report(console, summaries)
    if html is not None:
        from workers.simulation.report_html import write

        write(
            html,
            summaries,
            subtitle=f"the feed replayed from {spec}"
            if isinstance(spec, Path)
            else f"{spec.days} days of discharges, {spec.discharges_per_day:g} on an average "
            f"weekday (seed {spec.seed})",
        )
        err_console.print(f"report written to {html}")
    if any(s.invariant_problems for s in summaries):
        raise typer.Exit(1)
