"""A site's rules: its calendar, risk threshold, protocol selection table and outcome policy.

Loaded from `protocols/site.yaml`. Settings whose source is marked UNCONFIRMED in the domain
rules are here, with the documented default, so a site can change them.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.feed import FeedConfig

END_OF_DAY = time(23, 59, 59)


class CalendarConfig(BaseModel):
    """What due-time arithmetic needs: zone, working hours, closures beyond federal holidays."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "America/New_York"
    business_day_start: time = time(8, 0)
    business_day_end: time = time(17, 0)
    extra_closures: tuple[date, ...] = Field(
        default=(), description="site closures on top of weekends and US federal holidays"
    )

    @model_validator(mode="after")
    def _working_hours(self) -> CalendarConfig:
        if self.business_day_start >= self.business_day_end:
            raise ValueError("business_day_start must be before business_day_end")
        return self

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def end_of_day(self, day: date) -> datetime:
        return datetime.combine(day, END_OF_DAY, tzinfo=self.zone())

    def period_end(self, discharged_at: datetime, days: int) -> datetime:
        """TCM: the day of discharge and the next days-1 days (30 days in total), local."""
        return self.end_of_day(discharged_at.astimezone(self.zone()).date() + timedelta(days - 1))


class FacilityCalendar(BaseModel):
    """One facility's zone (IANA) and, when given, its own closures instead of the site's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str
    extra_closures: tuple[date, ...] | None = Field(
        default=None, description="closures of this facility; absent = the site's"
    )


class LateDischarges(BaseModel):
    """What a discharge that reaches carebridge late gets (replayed queues, first loads)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    too_old_after_days: int | None = Field(
        default=None,
        ge=1,
        description="older than this (days since discharge) on arrival: no transition; "
        "absent = once the protocol's transition period has ended",
    )


class OutcomePolicy(BaseModel):
    """Rules for the 30-day outcome where the sources disagree or are unconfirmed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tcm_after_readmission: bool = Field(
        default=True,
        description="UNCONFIRMED: whether the first TCM stays billable after a readmission",
    )
    trc_discharge_information_days: int = Field(
        default=2, ge=0, description="HEDIS TRC receipt window: day 0 through day +N"
    )
    mrp_days: int = Field(default=30, ge=0, description="HEDIS MRP: day 0 through day +30")


class PatientIdentifierRule(BaseModel):
    """Which PID-3 repetition identifies the patient: the first matching one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    assigning_authorities: tuple[str, ...] = Field(default=(), description="empty = any")
    type_codes: tuple[str, ...] = Field(default=("MR",), description="empty = any")


class SelectionRule(BaseModel):
    """First matching rule wins. Empty lists match anything."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: str
    dispositions: tuple[str, ...] = ()
    patient_classes: tuple[str, ...] = ()
    deceased: bool = Field(default=False, description="match only when PID-30 says died")

    def matches(self, disposition: str, patient_class: str, died: bool) -> bool:
        if self.deceased:
            return died
        return (not self.dispositions or disposition in self.dispositions) and (
            not self.patient_classes or patient_class in self.patient_classes
        )


class Attribution(StrEnum):
    """Which discharges are ours: checked on A03 only, before a transition starts."""

    ALL = "all"  # every discharge the feed sends
    ROSTER = "roster"  # the patient's identifier is in the imported roster
    PCP = "pcp"  # a PCP in PD1-4 / ROL (PP, PCP), or the roster row's, is one of ours


class Transport(StrEnum):
    WORKLIST = "worklist"  # in-app only: the notifications outbox row is the message
    EMAIL = "email"
    WEBHOOK = "webhook"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


WEEKDAYS = tuple(Weekday)  # in date.weekday() order


class Shift(BaseModel):
    """One person on duty for a role: on these weekdays from `start` to `end`, in the
    facility's local time. An end at or before the start runs into the next day (a night
    shift belongs to the day it starts); 00:00 to 00:00 is the whole day. Staff names only:
    no patient data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=120, description="who is on duty")
    email: str | None = Field(
        default=None, max_length=254, description="also sent the escalation (e-mail channel)"
    )
    days: tuple[Weekday, ...] = WEEKDAYS
    start: time = time(0)
    end: time = time(0)
    team: str | None = Field(
        default=None, description="only this care team's escalations; absent: any team's"
    )

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        """Day names in any case ("Mon", "mon")."""
        if isinstance(value, list | tuple):
            return tuple(str(day).strip().lower()[:3] for day in value)
        return value

    def covers(self, local: datetime, team: str | None) -> bool:
        if self.team is not None and self.team != team:
            return False
        day, previous = WEEKDAYS[local.weekday()], WEEKDAYS[(local.weekday() - 1) % 7]
        at = local.time().replace(tzinfo=None)
        if self.start < self.end:
            return day in self.days and self.start <= at < self.end
        return (day in self.days and at >= self.start) or (previous in self.days and at < self.end)


class NotificationConfig(BaseModel):
    """How each channel named in the protocols is delivered, and to whom (no PHI here)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    channels: dict[str, Transport] = Field(
        default_factory=lambda: {
            "worklist": Transport.WORKLIST,
            "email": Transport.EMAIL,
            "page": Transport.WEBHOOK,
            "sms": Transport.WEBHOOK,
        }
    )
    recipients: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="role or team -> e-mail addresses"
    )
    digest_time: time = Field(default=time(7, 30), description="daily digest, site time")
    digest_transport: Transport = Transport.EMAIL
    sweep_time: time = Field(default=time(2, 15), description="nightly consistency sweep")
    on_call: dict[str, tuple[Shift, ...]] = Field(
        default_factory=dict,
        description="role -> who is on duty when (first matching shift): an escalation to "
        "the role names that person",
    )

    def on_duty(
        self, role: str, at: datetime, zone: ZoneInfo, team: str | None = None
    ) -> Shift | None:
        """Who is on duty for the role at that instant (the facility's zone), if the site
        says; the first shift that covers it wins."""
        local = at.astimezone(zone)
        return next((s for s in self.on_call.get(role, ()) if s.covers(local, team)), None)


class CareTeams(BaseModel):
    """Which care team a transition belongs to, decided when its discharge arrives (like
    attribution: later roster changes do not move running transitions). The practice the
    roster attributes the patient to (a practice listed under `practices` is that team,
    another practice is a team of its own), else the first PCP listed under `pcps` (the
    roster row's, then PD1-4 / ROL-4), else `default`, else the discharging facility."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    practices: dict[str, str] = Field(default_factory=dict, description="roster practice -> team")
    pcps: dict[str, str] = Field(default_factory=dict, description="PCP id (XCN id) -> team")
    default: str | None = Field(
        default=None, description="no practice, no listed PCP: this team; absent: the facility"
    )

    @field_validator("practices", "pcps", mode="before")
    @classmethod
    def _keys_are_text(cls, value: object) -> object:
        """YAML reads an unquoted NPI as a number; an id is text."""
        if isinstance(value, dict):
            return {str(k).strip(): str(v).strip() for k, v in value.items()}
        return value

    def team_for(self, *, practice: str, pcp_ids: Sequence[str], facility: str) -> tuple[str, str]:
        """The team, and what decided it (roster practice, pcp, site default, facility)."""
        if practice:
            return self.practices.get(practice, practice), "roster practice"
        for pcp in pcp_ids:
            if pcp in self.pcps:
                return self.pcps[pcp], "pcp"
        if self.default:
            return self.default, "site default"
        return facility, "facility"


class UnmatchedPatientIdentifier(StrEnum):
    """What becomes of a message none of whose PID-3 repetitions matches `patient_identifier`."""

    FIRST = "first"  # use the first repetition, and record that decision on the message
    REFUSE = "refuse"  # AE with ERR on PID-3: the sender must send the identifier we key on


class CharacterSets(BaseModel):
    """How message bytes are read, for senders that mislabel them.

    MSH-18 (its first repetition) names the character set, HL7 table 0211: ASCII, 8859/1 to
    8859/9, 8859/15, UNICODE UTF-8 (and UNICODE), GB 18030-2000, BIG-5; empty or any other
    value is read as UTF-8. These settings say what a label really means: `read_as` for
    every sender, `by_facility` for one sending facility (MSH-4), which wins over read_as.
    Keys are MSH-18 values as sent ("" is an empty MSH-18; case and spacing do not matter),
    values Python codec names (cp1252, utf-8, iso8859-2). The ACK is written in the same
    codec, so a sender that means Windows-1252 by 8859/1 gets a curly apostrophe back as 0x92.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    read_as: dict[str, str] = Field(
        default_factory=dict, description="MSH-18 as sent -> the codec its bytes are really in"
    )
    by_facility: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="MSH-4 -> its own read_as (wins over read_as)"
    )

    @staticmethod
    def label(character_set: str) -> str:
        """An MSH-18 value as compared: upper case, single spaces ("unicode utf-8")."""
        return " ".join(character_set.split()).upper()

    @staticmethod
    def _codec(name: str) -> str:
        """The codec's canonical name; it must write the MSH (ASCII) as ASCII."""
        try:
            codec = codecs.lookup(name).name
            writes_ascii = "MSH|^~\\&".encode(codec) == b"MSH|^~\\&"
        except LookupError:  # no such codec, or not a text encoding (rot13)
            writes_ascii = False
        if not writes_ascii:
            raise ValueError(f"character_sets: {name!r} is not a codec that reads ASCII as ASCII")
        return codec

    @classmethod
    def _table(cls, value: object) -> dict[str, str]:
        if not isinstance(value, dict):
            raise ValueError("character_sets: expected MSH-18 value: codec pairs")
        return {cls.label(str(key)): cls._codec(str(codec)) for key, codec in value.items()}

    @field_validator("read_as", mode="before")
    @classmethod
    def _read_as(cls, value: object) -> dict[str, str]:
        return cls._table(value)

    @field_validator("by_facility", mode="before")
    @classmethod
    def _by_facility(cls, value: object) -> dict[str, dict[str, str]]:
        """Facility codes as text (YAML reads a numeric MSH-4 as a number)."""
        if not isinstance(value, dict):
            raise ValueError("character_sets.by_facility: expected facility: {MSH-18: codec}")
        return {str(facility).strip(): cls._table(table) for facility, table in value.items()}

    def codec(self, character_set: str, facility: str = "") -> str | None:
        """The codec this site reads that MSH-18 in, from that facility; None: no override."""
        label = self.label(character_set)
        return self.by_facility.get(facility, {}).get(label) or self.read_as.get(label)


class ApplicationAckRoute(BaseModel):
    """Where the application ACK of an enhanced-mode sender (MSH-16 set) goes: the first
    route whose sender fields match (empty matches any). `connection`: on the same connection,
    after the commit ACK, for senders that expect it there; `host:port`: a message of its own
    to the sender's inbound MLLP port (HL7 enhanced mode); `none`: kept, not sent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sending_application: str = Field(default="", description="MSH-3 namespace id; empty: any")
    sending_facility: str = Field(default="", description="MSH-4 namespace id; empty: any")
    deliver_to: str = Field(description="connection, none, or host:port")

    def matches(self, application: str, facility: str) -> bool:
        return self.sending_application in ("", application) and self.sending_facility in (
            "",
            facility,
        )

    def address(self) -> tuple[str, int] | None:
        """(host, port) for an outbound destination, None for connection or none."""
        if self.deliver_to in ("connection", "none"):
            return None
        host, _, port = self.deliver_to.rpartition(":")
        return host, int(port)

    @field_validator("deliver_to")
    @classmethod
    def _destination(cls, value: str) -> str:
        value = value.strip()
        if value in ("connection", "none"):
            return value
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"deliver_to: {value!r} is not connection, none or host:port")
        return value


class ReusedControlIds(StrEnum):
    """What becomes of a message whose MSH-10 its sender already used for different content
    (stored either way; an identical one is a retransmission and gets the stored ACK)."""

    PROCESS = "process"  # senders reset counters: MSH-10 is not unique over time
    REFUSE = "refuse"  # AE with ERR 205 (duplicate key identifier): the sender must fix it


class Practice(BaseModel):
    """The practice the patient calls with questions: printed on their care plan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(default="", max_length=120, description="as the patient knows it")
    phone: str = Field(default="", max_length=40, description="answered in business hours")
    after_hours_phone: str = Field(
        default="", max_length=40, description="a nurse line for nights and weekends"
    )


class SiteConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    calendar: CalendarConfig = CalendarConfig()
    facilities: dict[str, FacilityCalendar] = Field(
        default_factory=dict,
        description="facility code (MSH-4) -> its zone and closures; others use `calendar`",
    )
    late_discharges: LateDischarges = LateDischarges()
    high_risk_lace: int = Field(default=10, ge=0, le=19, description="LACE >= this is high risk")
    acute_admission_types: tuple[str, ...] = Field(
        default=("E",), description="PV1-4 admission types that count as acute (LACE 'A')"
    )
    policy: OutcomePolicy = OutcomePolicy()
    patient_identifier: PatientIdentifierRule = PatientIdentifierRule()
    reused_control_ids: ReusedControlIds = ReusedControlIds.PROCESS
    unmatched_patient_identifier: UnmatchedPatientIdentifier = UnmatchedPatientIdentifier.FIRST
    processing_ids: tuple[str, ...] | None = Field(
        default=None,
        description="MSH-11 values (table 0103) this instance acts on; others get AR with "
        "ERR 202 and are kept. None: P in production, P, T and D in development",
    )
    character_sets: CharacterSets = CharacterSets()
    application_acks: tuple[ApplicationAckRoute, ...] = Field(
        default=(), description="enhanced mode: where each sender's application ACKs go"
    )
    visit_number_sources: tuple[str, ...] = Field(
        default=("PV1-19", "PID-18", "PV1-50"),
        description="where the visit number is read, first non-empty wins (SEG-N fields)",
    )
    readmission_window_days: int = Field(default=30, ge=1)
    pending_visit_events_hours: int = Field(
        default=72,
        ge=1,
        description="a visit event (A02, A07, A08, A12, A13) that arrives before its "
        "discharge is kept this long and applied when the A03 starts the transition",
    )
    attribution: Attribution = Attribution.ALL
    attributed_pcp_ids: tuple[str, ...] = Field(
        default=(), description="PCP ids (XCN id) whose patients are ours under `pcp`"
    )
    notifications: NotificationConfig = NotificationConfig()
    care_teams: CareTeams = CareTeams()
    practice: Practice = Practice()
    feed: FeedConfig = FeedConfig()
    selection: tuple[SelectionRule, ...] = ()

    @field_validator("attributed_pcp_ids", mode="before")
    @classmethod
    def _ids_are_text(cls, value: object) -> object:
        """YAML reads an unquoted NPI as a number; an id is text."""
        if isinstance(value, list | tuple):
            return tuple(str(v).strip() if isinstance(v, int | str) else v for v in value)
        return value

    def application_ack_route(self, application: str, facility: str) -> ApplicationAckRoute:
        """The first matching route; none configured means kept, not sent."""
        for route in self.application_acks:
            if route.matches(application, facility):
                return route
        return ApplicationAckRoute(deliver_to="none")

    def accepted_processing_ids(self, production: bool) -> tuple[str, ...]:
        """MSH-11 values acted on: the setting, else P in production and P, T, D elsewhere."""
        if self.processing_ids is not None:
            return tuple(p.strip().upper() for p in self.processing_ids)
        return ("P",) if production else ("P", "T", "D")

    @field_validator("visit_number_sources")
    @classmethod
    def _sources_are_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for source in value:
            name, _, number = source.partition("-")
            if len(name) != 3 or not name.isalnum() or not number.isdigit() or int(number) < 1:
                raise ValueError(f"visit_number_sources: {source!r} is not a field like PV1-19")
        if not value:
            raise ValueError("visit_number_sources: name at least one field (PV1-19)")
        return value

    @model_validator(mode="after")
    def _pcp_rule_names_pcps(self) -> SiteConfig:
        if self.attribution == Attribution.PCP and not self.attributed_pcp_ids:
            raise ValueError("attribution pcp needs attributed_pcp_ids (none would be ours)")
        return self

    @model_validator(mode="after")
    def _zones_exist(self) -> SiteConfig:
        named = {"calendar": self.calendar.timezone} | {
            f"facilities.{code}": entry.timezone for code, entry in self.facilities.items()
        }
        for where, zone in named.items():
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{where}: unknown time zone {zone!r}") from None
        return self

    def calendar_zone(self) -> ZoneInfo:
        """The site's own zone (schedules, site-wide reports); a facility's is `zone_for`."""
        return self.calendar.zone()

    def calendar_for(self, facility: str) -> CalendarConfig:
        """The calendar a facility's transitions are planned on: its entry, else the site's."""
        entry = self.facilities.get(facility)
        if entry is None:
            return self.calendar
        closures = self.calendar.extra_closures
        if entry.extra_closures is not None:
            closures = entry.extra_closures
        return self.calendar.model_copy(
            update={"timezone": entry.timezone, "extra_closures": closures}
        )

    def zone_for(self, facility: str) -> ZoneInfo:
        """The zone HL7 times without an offset are read in, and a facility's times shown in."""
        return self.calendar_for(facility).zone()

    def facility_note(self, facility: str) -> str | None:
        """Why a facility is planned in the site zone, or None when it has its own entry."""
        if facility in self.facilities:
            return None
        return (
            f"facility {facility or '(none)'} has no entry under facilities in site.yaml: "
            f"planned in the site zone {self.calendar.timezone}"
        )
