"""The stamps check of a simulated run: a time before the first simulated day or after the
run ended is named, with the column and the period, in one sentence; the period reads in
the site's dates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from workers.simulation.stamps import Stamps

BEGAN = datetime(2031, 3, 3, tzinfo=UTC)
ENDED = BEGAN + timedelta(days=32)


def test_the_period_reads_in_the_sites_dates() -> None:
    stamps = Stamps(BEGAN, ENDED)
    assert stamps.period(ZoneInfo("America/New_York")) == "2031-03-02 to 2031-04-03"
    assert stamps.period(UTC) == "2031-03-03 to 2031-04-04"


def test_times_inside_the_simulated_period_are_not_reported() -> None:
    stamps = Stamps(BEGAN, ENDED, {"adt_inbox.received_at": (BEGAN, ENDED)})
    assert stamps.outside() == []


def test_a_wall_clock_time_before_the_period_is_named_with_its_column() -> None:
    wall = BEGAN - timedelta(days=30)
    stamps = Stamps(
        BEGAN,
        ENDED,
        {
            "notifications.created_at": (wall, BEGAN + timedelta(days=2)),
            "transitions.updated_at": (BEGAN, ENDED + timedelta(seconds=1)),
            "transition_events.at": (BEGAN, ENDED),
        },
    )
    assert stamps.outside() == [
        "notifications.created_at has times from 2031-02-01T00:00:00+00:00 to "
        "2031-03-05T00:00:00+00:00, outside the simulated period (2031-03-03T00:00:00+00:00 "
        "to 2031-04-04T00:00:00+00:00)",
        "transitions.updated_at has times from 2031-03-03T00:00:00+00:00 to "
        "2031-04-04T00:00:01+00:00, outside the simulated period (2031-03-03T00:00:00+00:00 "
        "to 2031-04-04T00:00:00+00:00)",
    ]


def test_the_times_messages_carry_are_not_stamps() -> None:
    # A replayed feed's first discharge may have happened before its message was sent.
    before = BEGAN - timedelta(minutes=15)
    stamps = Stamps(BEGAN, ENDED, {"transitions.discharged_at": (before, ENDED)})
    assert stamps.outside() == []
