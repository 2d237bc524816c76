"""`carebridge example`: a realistic ADT message about a fictitious patient, timed from now,
or one of the feed's other messages (SIU booking, A04 at the practice clinic, MDM discharge
summary: ingest/feed_examples.py), or a Da Vinci notification Bundle (FHIR R4 JSON:
ingest/fhir_examples.py)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from ingest import example_messages, feed_examples, fhir_examples
from workers.cli.app import app, err_console, site_zone

FHIR_KINDS = {"fhir-discharge": "a Da Vinci discharge notification Bundle (FHIR R4 JSON)"}
KIND_HELP = "; ".join(
    [f"{name}: {kind.description}" for name, kind in example_messages.KINDS.items()]
    + [f"{name}: {text}" for name, text in feed_examples.FEED_KINDS.items()]
    + [f"{name}: {text}" for name, text in FHIR_KINDS.items()]
)
SEPARATORS = {"cr": "\r", "lf": "\n"}


@app.command()
def example(
    kind: str = typer.Argument(..., help=KIND_HELP, metavar="KIND"),
    discharged: str = typer.Option(
        example_messages.DEFAULT_DISCHARGED,
        help="discharge time from now: -3h, -2d, -1d6h, +0h (w, d, h, m)",
    ),
    facility: str = typer.Option(
        example_messages.DEFAULT_FACILITY, help="MSH-4, PV1-3.4 and the PV1-19 authority"
    ),
    visit: str | None = typer.Option(None, help="PV1-19 visit number (default: a fresh one)"),
    mrn: str | None = typer.Option(
        None, help="PID-3 MRN (default: the visit's own with --visit, else a fresh one)"
    ),
    zone: str | None = typer.Option(
        None, help="IANA zone the times are written in, with its offset (default: the site's)"
    ),
    separator: str = typer.Option(
        "auto", help="segment separator: cr (as feeds send it), lf, or auto (lf on a terminal)"
    ),
) -> None:
    """Print one ADT message to stdout, e.g. `carebridge example a03 | carebridge send -`, or
    a FHIR notification Bundle (`fhir-discharge`) for POST /fhir/$process-message.

    The patient is fictitious; control id and visit number are fresh unless given, and the
    MRN is the visit's own (the same for an a03 and an a08 of one --visit) or fresh."""
    known = [*example_messages.KINDS, *feed_examples.FEED_KINDS, *FHIR_KINDS]
    if kind not in known:
        raise typer.BadParameter(f"one of {', '.join(known)}", param_hint="KIND")
    try:
        offset = example_messages.parse_offset(discharged)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--discharged") from None
    try:
        tz = ZoneInfo(zone) if zone else site_zone()
    except (ZoneInfoNotFoundError, ValueError):
        raise typer.BadParameter(f"unknown time zone {zone!r}", param_hint="--zone") from None
    if separator not in ("auto", *SEPARATORS):
        raise typer.BadParameter("cr, lf or auto", param_hint="--separator")
    if kind in ("a08", "a13", "mdm-t02") and not visit:
        err_console.print(
            f"note: no --visit, so this {kind} names a fresh visit that no transition has"
        )
    if kind in ("siu-s12", "a04-clinic") and not mrn and not visit:
        err_console.print(
            f"note: no --visit or --mrn, so this {kind} is about a fresh patient that no "
            "transition has"
        )
    if kind in FHIR_KINDS:
        bundle = fhir_examples.discharge_bundle(
            datetime.now(tz), facility=facility, visit=visit, mrn=mrn, discharged=offset
        )
        sys.stdout.write(json.dumps(bundle, indent=2) + "\n")
        return
    chosen = separator if separator != "auto" else ("lf" if sys.stdout.isatty() else "cr")
    if kind in feed_examples.FEED_KINDS:
        sys.stdout.write(
            feed_examples.build_feed(
                kind,
                now=datetime.now(UTC),
                facility=facility,
                visit=visit,
                mrn=mrn,
                zone=tz,
                separator=SEPARATORS[chosen],
            )
        )
        sys.stdout.flush()
        return
    message = example_messages.build(
        kind,
        now=datetime.now(UTC),
        discharged=offset,
        facility=facility,
        visit=visit,
        mrn=mrn,
        zone=tz,
    )
    sys.stdout.write(example_messages.render(message, SEPARATORS[chosen]))
    sys.stdout.flush()
