"""What may follow a generated discharge: an A08 demographic update (a new phone number) a
few hours later, and a readmission, an inpatient A01 for the same patient and a new visit
1-25 days after the discharge (inside the readmission window and the 30-day period), then
its own A03 a few days later, which starts a transition of its own."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime, timedelta

from ingest import example_messages as examples

READMITTED_AFTER_DAYS = (1, 25)
READMISSION_STAY_DAYS = (2, 8)


def follow_ups(
    rng: random.Random,
    readmission_share: float,
    a08_share: float,
    discharge: examples.Adt,
    discharged: datetime,
) -> list[tuple[datetime, examples.Adt]]:
    """The messages after `discharge` (its A03), each with when it is sent."""
    out: list[tuple[datetime, examples.Adt]] = []
    sent = discharge.sent_at
    assert isinstance(sent, datetime)
    if a08_share and rng.random() < a08_share:
        at = sent + timedelta(hours=rng.randrange(1, 7), minutes=rng.randrange(60))
        phone = f"4135550{rng.randrange(100, 200)}"  # 555-0100..0199: fiction
        out.append((at, _update(discharge, at, phone)))
    if readmission_share and rng.random() < readmission_share:
        low, high = READMITTED_AFTER_DAYS
        admitted = discharged + timedelta(
            days=rng.randrange(low, high + 1), minutes=rng.randrange(-6 * 60, 6 * 60)
        )
        stay = timedelta(days=rng.randrange(*READMISSION_STAY_DAYS), hours=rng.randrange(8))
        out += _readmission(discharge, admitted, stay, rng.randrange(2, 30))
    return out


def _update(discharge: examples.Adt, at: datetime, phone: str) -> examples.Adt:
    return replace(
        discharge,
        trigger="A08",
        control_id=f"{discharge.control_id}U",
        sent_at=at,
        person=replace(discharge.person, phone=phone),
    )


def _readmission(
    discharge: examples.Adt, admitted: datetime, stay: timedelta, minutes: int
) -> list[tuple[datetime, examples.Adt]]:
    visit = discharge.visit.replace("SIMV", "SIMR", 1)
    admit_sent = admitted + timedelta(minutes=minutes)
    admission = replace(
        discharge,
        trigger="A01",
        visit=visit,
        control_id=f"{discharge.control_id}R",
        sent_at=admit_sent,
        admitted_at=admitted,
        discharged_at=None,
        disposition="",
        diagnoses=(),
    )
    discharged = admitted + stay
    discharge_sent = discharged + timedelta(minutes=minutes)
    second = replace(
        admission,
        trigger="A03",
        control_id=f"{discharge.control_id}D",
        sent_at=discharge_sent,
        discharged_at=discharged,
        disposition="01",
    )
    return [(admit_sent, admission), (discharge_sent, second)]
