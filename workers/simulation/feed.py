"""A generated ADT feed: fictitious discharges (ER7 from ingest/example_messages.py) stamped
at simulated times, with a weekday pattern, a disposition mix, a share of high-LACE stays
(long emergency stays with heart failure, COPD and diabetes in DG1), A13 cancellations, and
(workers/simulation/readmissions.py) readmissions and A08 updates. The same seed gives the
same feed, so two protocol sets see the same patients."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from ingest import example_messages as examples
from workers.simulation import readmissions

# Monday .. Sunday: fewer discharges at the weekend, as hospitals see.
WEEKDAY_PATTERN = (1.15, 1.1, 1.05, 1.05, 1.2, 0.75, 0.7)
# PV1-36: home, home with home health, left against medical advice.
DISPOSITIONS = {"01": 0.8, "06": 0.15, "07": 0.05}
_KIND_OF = {"01": "a03", "06": "a03-home-health", "07": "a03-ama"}
_GIVEN = ("ALEX", "BEA", "CARL", "DANA", "ELI", "FAYE", "GUS", "HANA", "IVAN", "JUNE")
_FAMILY = ("TESTER", "SAMPLE", "EXAMPLE", "FICTION", "MOCK", "DEMO")


@dataclass(frozen=True)
class FeedSpec:
    days: int
    discharges_per_day: float
    weekday_pattern: tuple[float, ...] = WEEKDAY_PATTERN
    dispositions: dict[str, float] = field(default_factory=lambda: dict(DISPOSITIONS))
    high_risk_share: float = 0.3
    a13_share: float = 0.02
    seed: int = 1
    readmission_share: float = 0.0  # discharges readmitted 1-25 days later (A01, then A03)
    a08_share: float = 0.0  # discharges with an A08 demographic update hours later

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ValueError("a feed needs at least one day")
        if self.discharges_per_day <= 0:
            raise ValueError("discharges per day must be more than 0")
        if len(self.weekday_pattern) != 7 or min(self.weekday_pattern) < 0:
            raise ValueError("the weekday pattern has 7 weights (Monday first), none negative")
        unknown = set(self.dispositions) - set(_KIND_OF)
        if unknown:
            raise ValueError(
                f"dispositions {sorted(unknown)} are not simulated; use {sorted(_KIND_OF)}"
            )
        for name, share in (
            ("high-risk", self.high_risk_share),
            ("A13", self.a13_share),
            ("readmission", self.readmission_share),
            ("A08", self.a08_share),
        ):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"the {name} share must be between 0 and 1")


@dataclass(frozen=True)
class FeedMessage:
    at: datetime  # when the interface engine sends it
    raw: bytes
    trigger: str
    visit: str
    disposition: str
    high_risk: bool
    replayed: bool = False  # from a recorded feed (replay.py), not generated here


def generate(spec: FeedSpec, start: datetime, zone: ZoneInfo) -> list[FeedMessage]:
    """The feed from `start` (a local midnight) for `spec.days` days, sorted by time."""
    rng = random.Random(spec.seed)
    mean = sum(spec.weekday_pattern) / 7
    messages: list[FeedMessage] = []
    serial = 0
    for offset in range(spec.days):
        day = (start.astimezone(zone) + timedelta(days=offset)).date()
        expected = spec.discharges_per_day * spec.weekday_pattern[day.weekday()] / mean
        count = int(expected) + (1 if rng.random() < expected - int(expected) else 0)
        for _ in range(count):
            serial += 1
            minutes = rng.randrange(10 * 60, 19 * 60)  # discharged 10:00-19:00 local
            discharged = datetime.combine(day, time(0), tzinfo=zone) + timedelta(minutes=minutes)
            messages.extend(_discharge(spec, rng, serial, discharged))
    return sorted(messages, key=lambda m: m.at)


def _discharge(
    spec: FeedSpec, rng: random.Random, serial: int, discharged: datetime
) -> list[FeedMessage]:
    disposition = rng.choices(list(spec.dispositions), weights=list(spec.dispositions.values()))[0]
    high_risk = disposition != "07" and rng.random() < spec.high_risk_share
    visit = f"SIMV{spec.seed:03d}{serial:06d}"
    mrn = f"SIM{spec.seed:03d}{serial:06d}"
    sent = discharged + timedelta(minutes=rng.randrange(2, 30))
    person = replace(
        examples.KINDS[_KIND_OF[disposition]].person,
        given=rng.choice(_GIVEN),
        family=rng.choice(_FAMILY),
    )
    adt = replace(
        examples.build(
            _KIND_OF[disposition],
            now=sent,
            discharged=discharged - sent,
            visit=visit,
            mrn=mrn,
            control_id=f"SIM{spec.seed:03d}{serial:06d}A",
            zone=discharged.tzinfo or ZoneInfo("UTC"),
        ),
        person=person,
        next_of_kin=(),
    )
    if high_risk:  # a 10-day emergency stay with three chronic conditions: LACE >= 10
        adt = replace(
            adt,
            admitted_at=discharged - timedelta(days=10),
            diagnoses=examples.HIGH_RISK_DIAGNOSES,
        )
    out = [FeedMessage(sent, examples.render(adt).encode(), "A03", visit, disposition, high_risk)]
    if rng.random() < spec.a13_share:
        cancel_at = sent + timedelta(hours=rng.randrange(1, 6))
        cancel = replace(
            examples.build(
                "a13",
                now=cancel_at,
                visit=visit,
                mrn=mrn,
                control_id=f"SIM{spec.seed:03d}{serial:06d}C",
                zone=adt.zone,
            ),
            person=person,
        )
        out.append(
            FeedMessage(
                cancel_at, examples.render(cancel).encode(), "A13", visit, disposition, high_risk
            )
        )
    if not any(m.trigger == "A13" for m in out):
        # Their own generator, seeded per discharge: the feed above is the same with or
        # without them, and the same seed gives the same ones.
        extra = random.Random(f"{spec.seed}:{serial}")
        shares = (spec.readmission_share, spec.a08_share)
        out += [
            FeedMessage(at, examples.render(m).encode(), m.trigger, m.visit, m.disposition, False)
            for at, m in readmissions.follow_ups(extra, *shares, adt, discharged)
        ]
    return out
