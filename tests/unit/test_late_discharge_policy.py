"""When a discharge is too old to start a transition: the protocol's period (default) or the
site's `late_discharges.too_old_after_days`, decided at the time it arrives."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ingest.routing import AdtRouter
from schemas.adt import AdtEvent, MessageHeader
from schemas.protocol_library import ProtocolLibrary, load_library
from schemas.site import FacilityCalendar, LateDischarges

NY = ZoneInfo("America/New_York")
LIBRARY = load_library(Path(__file__).resolve().parents[2] / "protocols")
DISCHARGED = datetime(2025, 3, 3, 14, 0, tzinfo=NY)  # a Monday; the period ends April 1


def router(library: ProtocolLibrary = LIBRARY) -> AdtRouter:
    return AdtRouter(None, None, library=library, key_secret="unit-test-secret", task_queue="q")


def discharge(facility: str = "GENHOSP") -> AdtEvent:
    return AdtEvent(
        header=MessageHeader(control_id="C1", sending_facility=facility),
        event_type="A03",
        facility=facility,
        visit_number="V1",
        discharged_at=DISCHARGED,
    )


@pytest.mark.parametrize(
    ("arrived", "too_old"),
    [
        (datetime(2025, 4, 1, 23, 59, tzinfo=NY), False),  # the last minute of day 30
        (datetime(2025, 4, 2, 0, 0, 1, tzinfo=NY), True),
        (datetime(2013, 6, 12, tzinfo=NY), False),  # arrived before it happened: not late
    ],
)
def test_by_default_a_discharge_is_too_old_once_its_period_has_ended(
    arrived: datetime, too_old: bool
) -> None:
    protocol = LIBRARY.latest("discharge-home")
    reason = router().too_old(discharge(), protocol, arrived)
    assert (reason is not None) == too_old
    if reason:
        assert reason == "too old: the transition period ended 2025-04-01"


def test_a_site_limit_in_days_replaces_the_period() -> None:
    site = LIBRARY.site.model_copy(update={"late_discharges": LateDischarges(too_old_after_days=7)})
    strict = router(replace(LIBRARY, site=site))
    protocol = LIBRARY.latest("discharge-home")
    assert strict.too_old(discharge(), protocol, DISCHARGED + timedelta(days=6, hours=23)) is None
    reason = strict.too_old(discharge(), protocol, DISCHARGED + timedelta(days=7, minutes=1))
    assert reason == "too old: discharged 2025-03-03, more than the site's 7 days before it arrived"


def test_the_period_end_is_the_facility_zones_end_of_day() -> None:
    site = LIBRARY.site.model_copy(
        update={"facilities": {"QUEENS": FacilityCalendar(timezone="Pacific/Honolulu")}}
    )
    hawaii = router(replace(LIBRARY, site=site))
    protocol = LIBRARY.latest("discharge-home")
    # 02:00 in New York on April 2 is still April 1 (20:00) in Honolulu: day 30 is not over.
    arrived = datetime(2025, 4, 2, 2, 0, tzinfo=NY)
    assert router().too_old(discharge(), protocol, arrived) is not None
    assert hawaii.too_old(discharge("QUEENS"), protocol, arrived) is None
