"""HL7 v2 ADT messages as carebridge sees them after parsing (see ingest/)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.feed import Appointment, DocumentNotice

# PV1-36 (table 0112, the UB-04 patient status codes) that send the patient to another
# facility: a hospital, a skilled nursing, intermediate care, rehabilitation, long-term care
# or psychiatric facility, a swing bed (82-95: the same with a planned readmission).
FACILITY_DISPOSITIONS = frozenset(
    {"02", "03", "04", "05", "61", "62", "63", "64", "65", "66", "70"}
    | {str(n) for n in (*range(82, 86), *range(88, 96))}
)


class AckCode(StrEnum):
    """MSA-1 (HL7 table 0008)."""

    ACCEPT = "AA"
    ERROR = "AE"
    REJECT = "AR"
    COMMIT_ACCEPT = "CA"
    COMMIT_ERROR = "CE"
    COMMIT_REJECT = "CR"


class EncodingCharacters(BaseModel):
    """MSH-1 and MSH-2: the separators this sender uses (ACKs are answered in the same)."""

    model_config = ConfigDict(frozen=True)

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str = Field(default="", description="v2.7+: the fifth MSH-2 character")

    @property
    def msh2(self) -> str:
        return self.component + self.repetition + self.escape + self.subcomponent + self.truncation


class MessageHeader(BaseModel):
    """The MSH fields needed to route a message and to acknowledge it."""

    model_config = ConfigDict(frozen=True)

    encoding: EncodingCharacters = EncodingCharacters()
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    message_type: str = ""
    trigger_event: str = ""
    control_id: str = ""
    processing_id: str = ""
    version: str = ""
    accept_ack_type: str = ""
    application_ack_type: str = ""
    character_set: str = Field(default="", description="MSH-18 as sent (table 0211)")
    # MSH-3..6 whole, as sent (escaped, every HD component): what the ACK echoes back.
    sending_application_hd: str = ""
    sending_facility_hd: str = ""
    receiving_application_hd: str = ""
    receiving_facility_hd: str = ""

    @property
    def facility(self) -> str:
        """The sender's facility code: MSH-4, else MSH-3 (MSH-4 is optional in HL7)."""
        return self.sending_facility or self.sending_application


class PatientIdentifier(BaseModel):
    """One PID-3 repetition (CX). PHI: never logged, never in ids or search attributes."""

    model_config = ConfigDict(frozen=True)

    id: str
    assigning_authority: str = ""
    type_code: str = ""


class NextOfKin(BaseModel):
    """One NK1 segment: who may be a caregiver. PHI: never logged, never in ids."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(default="", description='NK1-2 as "Given Family"')
    relationship: str = Field(default="", description="NK1-3 identifier, HL7 table 0063")
    phone: str = Field(default="", description="NK1-5, the first repetition's number")


class MergedPatient(BaseModel):
    """One PID/MRG group of a merge message (A34-A36, A39, A40, A47): the MRG patient merged
    into the PID patient before it. PHI: never logged, never stored (only HMAC keys are)."""

    model_config = ConfigDict(frozen=True)

    surviving: tuple[PatientIdentifier, ...] = Field(default=(), description="PID-3")
    merged: tuple[PatientIdentifier, ...] = Field(default=(), description="MRG-1")
    surviving_account: str = Field(default="", description="PID-18 patient account number")
    merged_account: str = Field(default="", description="MRG-3 prior patient account number")


class AdtEvent(BaseModel):
    """An ADT message mapped to the fields carebridge acts on."""

    model_config = ConfigDict(frozen=True)

    header: MessageHeader
    event_type: str = Field(description="Trigger event, e.g. A03")
    facility: str = Field(description="Facility key: MSH-4 sending facility")
    visit_number: str = Field(
        default="", description="the visit number (PV1-19, else the site's fallbacks): the key"
    )
    visit_number_source: str = Field(default="", description="the field it came from: PV1-19 ...")
    patient_identifiers: tuple[PatientIdentifier, ...] = ()
    merged_identifiers: tuple[PatientIdentifier, ...] = Field(
        default=(), description="MRG-1 of the first PID/MRG group: merged into PID-3"
    )
    merges: tuple[MergedPatient, ...] = Field(
        default=(), description="every PID/MRG group of a merge message, in order"
    )
    location: str = Field(default="", description="PV1-3 point of care^room^bed^facility")
    patient_class: str = Field(default="", description="PV1-2, HL7 table 0004")
    admission_type: str = Field(default="", description="PV1-4 (E = emergency)")
    discharge_disposition: str = Field(default="", description="PV1-36, HL7 table 0112")
    discharged_to: str = Field(
        default="", description="PV1-37.1 discharged to location: the receiving facility"
    )
    admitted_at: AwareDatetime | None = None
    discharged_at: AwareDatetime | None = None
    death_indicator: bool = False
    diagnosis_codes: tuple[str, ...] = Field(default=(), description="DG1-3 codes (ICD-10)")
    # The demographics the feed carries, for the patient registry (store/registry.py). PHI
    # all of them: never logged, never in ids, search attributes, metrics or errors.
    family_name: str = Field(default="", description="PID-5.1 of the first repetition. PHI")
    given_name: str = Field(default="", description="PID-5.2 of the first repetition. PHI")
    middle_name: str = Field(default="", description="PID-5.3 of the first repetition. PHI")
    birth_date: date | None = Field(default=None, description="PID-7, its date. PHI")
    sex: str = Field(default="", description="PID-8 as sent (HL7 table 0001). PHI")
    address: str = Field(
        default="", description="PID-11 first repetition on one line (street, city ...). PHI"
    )
    cleared: tuple[str, ...] = Field(
        default=(),
        description='the demographic fields sent as the HL7 null "" (family_name, given_name, '
        "middle_name, birth_date, sex, address, language, pcp): delete the value kept; an "
        "empty field only means not sent",
    )
    principal_diagnosis: str = Field(
        default="", description="DG1-3.1 of the DG1 with DG1-15 priority 1, else the first. PHI"
    )
    principal_diagnosis_text: str = Field(
        default="", description="DG1-3.2 of that DG1, as sent. PHI"
    )
    unit: str = Field(default="", description="PV1-3.1, the point of care (the unit)")
    contact_numbers: tuple[str, ...] = Field(default=(), description="PID-13/14. PHI")
    contact_numbers_cleared: bool = Field(
        default=False,
        description='PID-13/14 sent as the HL7 null "" and no number left: delete the numbers '
        "kept (empty PID-13/14 only means not sent: keep them)",
    )
    language: str = Field(default="", description="PID-15 identifier, else its text")
    next_of_kin: tuple[NextOfKin, ...] = Field(default=(), description="NK1 segments. PHI")
    appointment: Appointment | None = Field(default=None, description="SIU: the appointment")
    document: DocumentNotice | None = Field(default=None, description="MDM: the document")
    pcp_ids: tuple[str, ...] = Field(
        default=(), description="PD1-4 ids and ROL-4 ids of ROL-3 role PP/PCP (attribution)"
    )
    pcp_name: str = Field(
        default="", description='the first of those providers as "Given Family" (the registry)'
    )
    occurred_at: AwareDatetime | None = Field(default=None, description="EVN-6, EVN-2 or MSH-7")
