"""Example feed messages about the fictitious patients of ingest/example_messages.py, timed
from a given `now`: a scheduling system's SIU (the follow-up visit booked, moved, cancelled,
missed), the clinic's arrival ADT^A04 at a practice location, the hospital's MDM^T02
discharge summary. `carebridge example siu-s12 / a04-clinic / mdm-t02` print them; the tests
build theirs here."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, tzinfo

from ingest import example_messages
from ingest.example_messages import _segment, _stamp, build, fresh_control_id, render

DEFAULT_CLINIC = "PCPMAIN"  # the practice location protocols/site.yaml lists
DEFAULT_PROVIDER = "P0207^HOUSE^GREGORY^^^^MD"
# SCH-25 filler status for each trigger (HL7 table 0278)
_STATUS = {
    "S12": "Booked",
    "S13": "Booked",
    "S14": "Booked",
    "S15": "Cancelled",
    "S17": "Deleted",
    "S26": "Noshow",
}


def _pid(facility: str, mrn: str | None) -> str:
    """The example patient's PID (the MRN given, else a fresh one)."""
    patient = example_messages.JANE
    fields = {
        1: "1",
        3: f"{mrn or example_messages.fresh_mrn()}^^^{facility}^MR",
        5: patient.name,
        7: patient.birth_date,
        8: patient.sex,
    }
    return _segment("PID", fields)


def _pv1(facility: str, visit: str) -> str:
    """The index stay's PV1 (PV1-19 its visit number)."""
    return _segment(
        "PV1", {1: "1", 2: "I", 3: f"4W^401^A^{facility}", 19: f"{visit}^^^{facility}^VN"}
    )


def siu(
    trigger: str,
    *,
    start: datetime,
    now: datetime | None = None,
    facility: str = example_messages.DEFAULT_FACILITY,
    mrn: str | None = None,
    appointment_id: str = "APT1",
    clinic: str = DEFAULT_CLINIC,
    provider: str = DEFAULT_PROVIDER,
    control_id: str | None = None,
    zone: tzinfo = UTC,
    separator: str = "\r",
) -> str:
    """An SIU^S12..S26 for the follow-up visit: SCH (ids, SCH-11.4 start, SCH-25 status),
    TQ1-7, PID, RGS, AIS-4 start, AIL-3 the clinic, AIP-3 the provider."""
    sent = _stamp((now or datetime.now(UTC)).replace(microsecond=0), zone)
    begins = _stamp(start, zone)
    segments = [
        f"MSH|^~\\&|SCHED|{facility}|CAREBRIDGE|CB|{sent}||SIU^{trigger}^SIU_S12|"
        f"{control_id or fresh_control_id()}|P|2.5.1",
        _segment(
            "SCH",
            {
                1: f"{appointment_id}^SCHED",
                2: f"{appointment_id}^SCHED",
                7: "TCM^Transitional care visit",
                11: f"^^^{begins}",
                25: _STATUS.get(trigger, ""),
            },
        ),
        f"TQ1|1||||||{begins}",
        _pid(facility, mrn),
        "RGS|1",
        f"AIS|1||TCM^Transitional care visit|{begins}",
        f"AIL|1||{clinic}^^^{facility}",
        f"AIP|1||{provider}",
    ]
    return separator.join(segments) + separator


def a04_clinic(
    *,
    arrived: datetime,
    now: datetime | None = None,
    facility: str = example_messages.DEFAULT_FACILITY,
    mrn: str | None = None,
    clinic: str = DEFAULT_CLINIC,
    control_id: str | None = None,
    zone: tzinfo = UTC,
    separator: str = "\r",
) -> str:
    """An ADT^A04: the patient registered at the practice clinic, an outpatient visit of
    its own (PV1-2 O, PV1-44 the arrival)."""
    message = build("a03", now=now, facility=facility, mrn=mrn, control_id=control_id, zone=zone)
    message = replace(
        message,
        trigger="A04",
        patient_class="O",
        location=f"{clinic}^^",
        admission_type="R",
        admitted_at=arrived,
        discharged_at=None,
        disposition="",
        next_of_kin=(),
    )
    return render(message, separator)


def mdm(
    trigger: str = "T02",
    *,
    written: datetime,
    visit: str,
    now: datetime | None = None,
    facility: str = example_messages.DEFAULT_FACILITY,
    mrn: str | None = None,
    document_type: str = "DS",
    control_id: str | None = None,
    zone: tzinfo = UTC,
    separator: str = "\r",
) -> str:
    """An MDM^T02/T04 for the index stay (PV1-19 its visit): TXA-2 the document type (DS
    discharge summary), TXA-4 when it was written, TXA-17 authenticated; one OBX of text."""
    sent = _stamp((now or datetime.now(UTC)).replace(microsecond=0), zone)
    segments = [
        f"MSH|^~\\&|EPIC|{facility}|CAREBRIDGE|CB|{sent}||MDM^{trigger}^MDM_T02|"
        f"{control_id or fresh_control_id()}|P|2.5.1",
        f"EVN|{trigger}|{sent}",
        _pid(facility, mrn),
        _pv1(facility, visit),
        _segment(
            "TXA",
            {
                1: "1",
                2: document_type,
                3: "TX",
                4: _stamp(written, zone),
                12: f"DOC{visit}^EPIC",
                17: "AU",
            },
        ),
        "OBX|1|TX|18842-5^Discharge summary^LN||Discharge summary text (fictitious)",
    ]
    return separator.join(segments) + separator


def oru(
    *,
    written: datetime,
    visit: str,
    now: datetime | None = None,
    facility: str = example_messages.DEFAULT_FACILITY,
    mrn: str | None = None,
    code: str = "18842-5",
    control_id: str | None = None,
    zone: tzinfo = UTC,
    separator: str = "\r",
) -> str:
    """An ORU^R01 carrying the stay's discharge summary as a result: OBR-4 its code (LOINC
    18842-5), OBR-7 when it was written, one OBX of text."""
    sent = _stamp((now or datetime.now(UTC)).replace(microsecond=0), zone)
    stamp = _stamp(written, zone)
    segments = [
        f"MSH|^~\\&|EPIC|{facility}|CAREBRIDGE|CB|{sent}||ORU^R01^ORU_R01|"
        f"{control_id or fresh_control_id()}|P|2.5.1",
        _pid(facility, mrn),
        _pv1(facility, visit),
        "ORC|RE",
        _segment(
            "OBR", {1: "1", 3: f"DOC{visit}^EPIC", 4: f"{code}^Discharge summary^LN", 7: stamp}
        ),
        f"OBX|1|TX|{code}^Discharge summary^LN||Discharge summary text (fictitious)"
        f"||||||F|||{stamp}",
    ]
    return separator.join(segments) + separator


FEED_KINDS = {
    "siu-s12": "SIU^S12: the follow-up visit booked at the practice clinic in 5 days",
    "a04-clinic": "ADT^A04: the patient arrived at the practice clinic (an outpatient visit)",
    "mdm-t02": "MDM^T02: the discharge summary of the stay (TXA-2 DS), written now",
}


def build_feed(
    kind: str,
    *,
    now: datetime,
    facility: str,
    visit: str | None,
    mrn: str | None,
    zone: tzinfo,
    separator: str,
) -> str:
    """`carebridge example` for the FEED_KINDS. With --visit (the index stay) and no --mrn,
    the patient is that visit's (example_messages.mrn_of_visit): `example siu-s12 --visit V`
    books for the patient `example a03 --visit V` discharged; the SIU and the A04 are
    encounters of their own."""
    if visit and not mrn:
        mrn = example_messages.mrn_of_visit(facility, visit)
    if kind == "siu-s12":
        local = now.astimezone(zone) + timedelta(days=5)
        start = local.replace(hour=10, minute=0, second=0, microsecond=0)
        return siu(
            "S12", start=start, now=now, facility=facility, mrn=mrn, zone=zone, separator=separator
        )
    if kind == "a04-clinic":
        return a04_clinic(
            arrived=now, now=now, facility=facility, mrn=mrn, zone=zone, separator=separator
        )
    if kind == "mdm-t02":
        return mdm(
            "T02",
            written=now,
            visit=visit or example_messages.fresh_visit(),
            now=now,
            facility=facility,
            mrn=mrn,
            zone=zone,
            separator=separator,
        )
    raise ValueError(f"unknown kind {kind!r}: one of {', '.join(FEED_KINDS)}")
