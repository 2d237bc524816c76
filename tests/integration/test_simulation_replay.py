"""`carebridge simulate --feed`: the shipped example folder of recorded ER7 files (CRLF in one,
MLLP framing in another) replayed through the real worker, intake and PostgreSQL on the
time-skipping server, with an A13 cancelling one discharge, a readmission of another
patient and its own discharge; messages the engine refuses are counted, never stop the run;
and the command's refusals."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from schemas.protocol_library import load_library
from schemas.transition import TransitionStatus
from tests.helpers import a03, with_field
from tests.integration.conftest import run_cli, simulate_env
from workers.runtime.settings import Settings
from workers.simulation import engine
from workers.simulation.feed import FeedSpec, generate
from workers.simulation.replay import replay
from workers.simulation.report import summarize
from workers.simulation.session import first_day
from workers.simulation.staff import load_staff

ROOT = Path(__file__).resolve().parents[2]
PROTOCOLS = ROOT / "protocols"
EXAMPLE_FEED = ROOT / "docs" / "simulation" / "feed-example"
EXAMPLE_STAFF = ROOT / "docs" / "simulation" / "staff.yaml"
ZONE = load_library(PROTOCOLS).site.calendar_zone()
EDT = timezone(timedelta(hours=-4))


def recorded(day: int, hour: int, minute: int) -> datetime:
    """A time of the example folder, as written there (April 2025, US Eastern daylight)."""
    return datetime(2025, 4, day, hour, minute, tzinfo=EDT)


FIRST_SENT = recorded(7, 10, 30)  # the folder's first message


async def test_the_example_folder_replays_its_cancel_and_readmission_and_counts_refusals(
    settings: Settings, tmp_path: Path
) -> None:
    # The example: five A03s (Alex, Bea, Carl, Dana; Bea again after her readmission), an
    # A08 for Alex, an A13 cancelling Carl's discharge, an A01 readmitting Bea eight days
    # after hers. Added here: a file with an A03 without a visit number (AE) and text that
    # is no message (AR), which the report counts and the run goes past.
    folder = tmp_path / "feed"
    shutil.copytree(EXAMPLE_FEED, folder)
    no_visit = with_field(
        a03(now=FIRST_SENT + timedelta(hours=2), facility="GENHOSP"), "PV1", 19, ""
    )
    (folder / "zz-refused.hl7").write_bytes(no_visit + b"\x0bnot a message\r\x1c\r")
    start = first_day(None, ZONE)
    feed = replay(folder, start, ZONE)
    assert feed[0].at == datetime.combine(start.date(), FIRST_SENT.astimezone(ZONE).time(), ZONE)

    result = await engine.run(settings, PROTOCOLS, load_staff(EXAMPLE_STAFF), feed, start)

    def when(at: datetime) -> datetime:  # a recorded time as replayed
        return feed[0].at + (at - FIRST_SENT)

    finals = sorted(result.finals, key=lambda f: f.discharged_at)
    assert [f.discharged_at for f in finals] == [
        when(recorded(7, 10, 12)),  # Alex
        when(recorded(7, 13, 55)),  # Bea
        when(recorded(8, 10, 40)),  # Carl
        when(recorded(8, 15, 15)),  # Dana
        when(recorded(18, 11, 30)),  # Bea, after her readmission
    ]
    assert [f.status == TransitionStatus.CANCELLED for f in finals] == [
        False,
        False,
        True,
        False,
        False,
    ]
    assert [f.readmitted_at for f in finals] == [
        None,
        when(recorded(15, 7, 40)),  # PV1-44 of the A01
        None,
        None,
        None,
    ]
    assert finals[3].protocol_id == "discharge-home-health"  # PV1-36 06
    assert result.acks == {"AA": 8, "AE": 1, "AR": 1}

    summary = summarize(result, "example")
    assert (summary.discharges, summary.cancelled, summary.readmissions) == (5, 1, 1)
    assert summary.refused == {"AE": 1, "AR": 1}
    assert summary.invariant_problems == []
    data = summary.as_json()
    assert (data["readmissions"], data["cancelled"], data["refused"]) == (1, 1, summary.refused)


async def test_feed_and_generation_options_together_are_refused_in_one_sentence(
    tmp_path: Path,
) -> None:
    answer = await run_cli(
        {}, "simulate", f"--staff={EXAMPLE_STAFF}", f"--feed={EXAMPLE_FEED}", "--days=3", "--seed=2"
    )
    assert answer.exit_code == 1
    assert (
        "--feed replays a recorded feed, so it cannot be combined with --days, --seed, which "
        "generate one." in answer.output
    )


async def test_a_feed_file_whose_first_message_has_no_time_is_refused_naming_it(
    settings: Settings, tmp_path: Path
) -> None:
    bad = tmp_path / "day.hl7"
    untimed = with_field(with_field(a03(facility="GENHOSP"), "MSH", 7, ""), "EVN", 2, "")
    bad.write_bytes(untimed)
    answer = await run_cli(
        simulate_env(settings, tmp_path),
        "simulate",
        f"--staff={EXAMPLE_STAFF}",
        f"--protocols={PROTOCOLS}",
        f"--feed={bad}",
        "--json",
    )
    assert answer.exit_code == 1
    assert "day.hl7: message 1 has no usable time (MSH-7 or EVN-2)" in answer.output
    assert "Traceback" not in answer.output


@pytest.mark.timeout(240)
async def test_simulate_replays_a_feed_file_through_the_command_in_json(
    settings: Settings, tmp_path: Path
) -> None:
    answer = await run_cli(
        simulate_env(settings, tmp_path),
        "simulate",
        f"--staff={EXAMPLE_STAFF}",
        f"--protocols={PROTOCOLS}",
        f"--feed={EXAMPLE_FEED / '2025-04-08.mllp'}",
        "--json",
    )
    assert answer.exit_code == 0, answer.output
    (run,) = json.loads(answer.output)["runs"]
    assert (run["discharges"], run["cancelled"], run["readmissions"]) == (2, 1, 0)
    assert run["refused"] == {} and run["invariant_problems"] == []


@pytest.mark.timeout(240)
async def test_generated_readmissions_and_updates_are_what_the_engine_counts(
    settings: Settings,
) -> None:
    # Four discharges, each updated by an A08 hours later and readmitted 1-25 days later
    # (an A01, then its own A03): eight transitions, four of them readmitted.
    start = first_day(None, ZONE)
    spec = FeedSpec(
        days=1,
        discharges_per_day=4,
        weekday_pattern=(1.0,) * 7,
        a13_share=0.0,
        readmission_share=1.0,
        a08_share=1.0,
        seed=9,
    )
    feed = generate(spec, start, ZONE)
    assert [m.trigger for m in feed].count("A08") == 4
    result = await engine.run(settings, PROTOCOLS, load_staff(EXAMPLE_STAFF), feed, start)

    summary = summarize(result)
    assert (summary.discharges, summary.cancelled, summary.readmissions) == (8, 0, 4)
    assert result.acks == {"AA": len(feed)}
    assert summary.invariant_problems == []
