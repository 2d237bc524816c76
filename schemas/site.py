"""A site's rules: its calendar, risk threshold, protocol selection table and outcome policy.

Loaded from `protocols/site.yaml`. Settings whose source is marked UNCONFIRMED in the domain
rules are here, with the documented default, so a site can change them.
"""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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


class SiteConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    calendar: CalendarConfig = CalendarConfig()
    high_risk_lace: int = Field(default=10, ge=0, le=19, description="LACE >= this is high risk")
    acute_admission_types: tuple[str, ...] = Field(
        default=("E",), description="PV1-4 admission types that count as acute (LACE 'A')"
    )
    policy: OutcomePolicy = OutcomePolicy()
    patient_identifier: PatientIdentifierRule = PatientIdentifierRule()
    readmission_window_days: int = Field(default=30, ge=1)
    attribution: Attribution = Attribution.ALL
    attributed_pcp_ids: tuple[str, ...] = Field(
        default=(), description="PCP ids (XCN id) whose patients are ours under `pcp`"
    )
    notifications: NotificationConfig = NotificationConfig()
    selection: tuple[SelectionRule, ...] = ()

    @field_validator("attributed_pcp_ids", mode="before")
    @classmethod
    def _ids_are_text(cls, value: object) -> object:
        """YAML reads an unquoted NPI as a number; an id is text."""
        if isinstance(value, list | tuple):
            return tuple(str(v).strip() if isinstance(v, int | str) else v for v in value)
        return value

    @model_validator(mode="after")
    def _pcp_rule_names_pcps(self) -> SiteConfig:
        if self.attribution == Attribution.PCP and not self.attributed_pcp_ids:
            raise ValueError("attribution pcp needs attributed_pcp_ids (none would be ours)")
        return self

    def calendar_zone(self) -> ZoneInfo:
        return ZoneInfo(self.calendar.timezone)
