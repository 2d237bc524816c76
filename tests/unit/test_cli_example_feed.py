"""`carebridge example siu-s12 / a04-clinic / mdm-t02`: the feed's other messages, which the
mapping reads as the routing needs them (the booking's time, provider and clinic; the
clinic arrival; the discharge summary of the given visit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from ingest import er7, feed_examples, mapping
from schemas.adt import AdtEvent
from workers.cli.main import app

NY = ZoneInfo("America/New_York")
runner = CliRunner()


def example(*args: str) -> AdtEvent:
    result = runner.invoke(app, ["example", *args, "--separator", "cr", "--zone", "UTC"])
    assert result.exit_code == 0, result.output
    return mapping.to_event(er7.parse(result.stdout.encode()), NY)


def test_siu_s12_books_the_practice_clinic_in_five_days() -> None:
    event = example("siu-s12", "--mrn", "M77")
    assert (event.header.message_type, event.event_type) == ("SIU", "S12")
    assert event.appointment is not None and event.appointment.at is not None
    days = (event.appointment.at - datetime.now(UTC)).total_seconds() / 86400
    assert 4 < days < 6
    assert event.appointment.location == feed_examples.DEFAULT_CLINIC
    assert event.appointment.provider == "GREGORY HOUSE"
    assert event.patient_identifiers[0].id == "M77"


def test_a04_clinic_is_an_outpatient_arrival_at_the_practice() -> None:
    event = example("a04-clinic", "--mrn", "M77")
    assert (event.event_type, event.patient_class) == ("A04", "O")
    assert event.location.split("^")[0] == feed_examples.DEFAULT_CLINIC
    assert event.admitted_at is not None
    assert abs(event.admitted_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_mdm_t02_is_the_discharge_summary_of_the_visit() -> None:
    event = example("mdm-t02", "--visit", "V42")
    assert (event.header.message_type, event.event_type, event.visit_number) == (
        "MDM",
        "T02",
        "V42",
    )
    assert event.document is not None and event.document.type == "DS"


def test_an_unknown_kind_names_the_feed_kinds_too() -> None:
    result = runner.invoke(app, ["example", "siu-s99"])
    assert result.exit_code != 0 and "mdm-t02" in result.output


def test_with_a_visit_the_feed_examples_name_the_patient_that_visit_discharged() -> None:
    discharge = runner.invoke(app, ["example", "a03", "--visit", "V7", "--separator", "cr"])
    patient = mapping.to_event(er7.parse(discharge.stdout.encode()), NY).patient_identifiers[0]
    for kind in ("siu-s12", "a04-clinic", "mdm-t02"):
        event = example(kind, "--visit", "V7")
        assert event.patient_identifiers[0].id == patient.id, kind
    assert example("a04-clinic", "--visit", "V7").visit_number != "V7"  # its own encounter
