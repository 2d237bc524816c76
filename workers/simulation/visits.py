"""The follow-up visit as the clinic's systems report it: the scheduler's booking is an
SIU^S12 from the scheduling system, the patient's arrival an ADT^A04 at the practice clinic,
a missed visit an SIU^S26 (no-show). The staff put these on an Outbox at their simulated
times; the engine delivers them through the real intake with the feed. Each message carries
the discharge's own PID, so it reaches that patient's transition (by patient key)."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from activities.business_calendar import BusinessCalendar
from ingest import feed_examples

Kind = Literal["booking", "arrival", "no-show"]
NO_SHOW_AFTER = timedelta(hours=1)  # the clinic reports a missed visit an hour after its start


@dataclass(frozen=True)
class Patient:
    """Who a discharge was for, as its A03 said: its PID segment and sending facility."""

    pid: str
    facility: str

    @classmethod
    def of_discharge(cls, raw: bytes) -> Patient:
        lines = raw.decode("utf-8").replace("\n", "\r").split("\r")
        pid = next((line for line in lines if line.startswith("PID|")), "")
        msh = next((line for line in lines if line.startswith("MSH|")), "MSH|")
        fields = msh.split("|")
        if not pid or len(fields) < 4:
            raise ValueError("the discharge has no PID segment or no sending facility (MSH-4)")
        return cls(pid, fields[3])


@dataclass(order=True, frozen=True)
class StaffMessage:
    at: datetime
    serial: int
    raw: bytes = field(compare=False)
    kind: Kind = field(compare=False)
    transition_id: str = field(compare=False)


class Outbox:
    """Messages the simulated staff and clinic send, in time order."""

    def __init__(self) -> None:
        self._queue: list[StaffMessage] = []
        self._serial = itertools.count(1)

    def push(self, at: datetime, raw: str, kind: Kind, transition_id: str) -> None:
        heapq.heappush(
            self._queue, StaffMessage(at, next(self._serial), raw.encode(), kind, transition_id)
        )

    def next_at(self) -> datetime | None:
        return self._queue[0].at if self._queue else None

    def due(self, now: datetime) -> list[StaffMessage]:
        """The messages sent by `now`, oldest first, taken off the queue."""
        out = []
        while self._queue and self._queue[0].at <= now:
            out.append(heapq.heappop(self._queue))
        return out

    def __len__(self) -> int:
        return len(self._queue)


def visit_day(
    calendar: BusinessCalendar,
    discharge_day: date,
    offset: int,
    unit: Literal["days", "business_days"],
    today: date,
) -> date:
    """The day a visit is booked for: `offset` days (or business days) after the discharge
    day, on a business day; never before tomorrow (a rebooking after a missed visit)."""
    if unit == "business_days":
        day = calendar.add_business_days(discharge_day, offset)
    else:
        day = discharge_day + timedelta(days=offset)
    day = max(day, today + timedelta(days=1))
    while not calendar.is_business_day(day):
        day += timedelta(days=1)
    return day


def appointment_id(transition_id: str, visit: int) -> str:
    """A scheduling system's id for the transition's visit number `visit` (no PHI: the
    transition id is opaque)."""
    return f"SIMA{transition_id[-10:]}{visit:02d}"


def _with_pid(message: str, patient: Patient) -> str:
    return "\r".join(
        patient.pid if line.startswith("PID|") else line for line in message.split("\r")
    )


def booking(
    patient: Patient, start: datetime, now: datetime, appointment: str, control_id: str
) -> str:
    """SIU^S12: the visit booked for `start` at the practice clinic."""
    return _siu("S12", patient, start, now, appointment, control_id)


def no_show(
    patient: Patient, start: datetime, now: datetime, appointment: str, control_id: str
) -> str:
    """SIU^S26: the patient did not come to the appointment at `start`."""
    return _siu("S26", patient, start, now, appointment, control_id)


def _siu(
    trigger: str,
    patient: Patient,
    start: datetime,
    now: datetime,
    appointment: str,
    control_id: str,
) -> str:
    return _with_pid(
        feed_examples.siu(
            trigger,
            start=start,
            now=now,
            facility=patient.facility,
            appointment_id=appointment,
            control_id=control_id,
            zone=start.tzinfo or ZoneInfo("UTC"),
        ),
        patient,
    )


def arrival(patient: Patient, arrived: datetime, control_id: str) -> str:
    """ADT^A04: the patient registered at the practice clinic for the visit."""
    return _with_pid(
        feed_examples.a04_clinic(
            arrived=arrived,
            now=arrived,
            facility=patient.facility,
            control_id=control_id,
            zone=arrived.tzinfo or ZoneInfo("UTC"),
        ),
        patient,
    )


def start_on(day: date, at: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=zone)
