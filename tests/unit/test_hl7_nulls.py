"""HL7 nulls: `""` is the explicit null ("delete the value"), an empty field is "not sent".

Every field the mapping reads is tried with a value, empty and `""`; the null must never be
read as data (a living patient marked deceased, an unparseable discharge time).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import hl7
import pytest
from typer.testing import CliRunner

from ingest import er7, mapping
from ingest.errors import HL7Error
from ingest.routing import AdtRouter
from schemas.adt import AckCode, AdtEvent
from schemas.protocol_library import load_library
from workers.cli.main import app

NY = ZoneInfo("America/New_York")
PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"
NULL = '""'

MSH_TIME = datetime(2025, 3, 10, 14, 35, tzinfo=NY)
EVN2_TIME = datetime(2025, 3, 10, 14, 30, tzinfo=NY)
EVN6_TIME = datetime(2025, 3, 10, 14, 15, tzinfo=NY)
ADMITTED = datetime(2025, 3, 5, 8, 0, tzinfo=NY)
DISCHARGED = datetime(2025, 3, 10, 14, 0, tzinfo=NY)

# One A03 with every field the mapping reads; (segment, field) -> the value sent.
BASE: dict[tuple[str, int], str] = {
    ("MSH", 3): "EPIC",
    ("MSH", 4): "GENHOSP",
    ("MSH", 5): "CAREBRIDGE",
    ("MSH", 6): "CB",
    ("MSH", 7): "20250310143500",
    ("MSH", 9): "ADT^A03^ADT_A03",
    ("MSH", 10): "CTRL-0001",
    ("MSH", 11): "P",
    ("MSH", 12): "2.5.1",
    ("MSH", 15): "AL",
    ("MSH", 16): "NE",
    ("EVN", 1): "A03",
    ("EVN", 2): "20250310143000",
    ("EVN", 6): "20250310141500",
    ("PID", 1): "1",
    ("PID", 3): "100234^^^GENHOSP^MR",
    ("PID", 5): "DOE^JANE^Q",
    ("PID", 13): "^PRN^PH^^1^413^5550142",
    ("PID", 14): "(413)555-0199",
    ("PID", 15): "SPA^Spanish^ISO6392",
    ("PID", 29): "",
    ("PID", 30): "",
    ("PV1", 1): "1",
    ("PV1", 2): "I",
    ("PV1", 3): "4W^401^A^GENHOSP",
    ("PV1", 4): "E",
    ("PV1", 19): "V0000123^^^GENHOSP^VN",
    ("PV1", 36): "01",
    ("PV1", 44): "20250305080000",
    ("PV1", 45): "20250310140000",
    ("DG1", 1): "1",
    ("DG1", 3): "I50.9^Heart failure^I10",
    ("NK1", 1): "1",
    ("NK1", 2): "DOE^JOHN",
    ("NK1", 3): "SPO^Spouse",
    ("NK1", 5): "(413)555-0143",
    ("PD1", 4): "1234567890^WELBY^MARCUS",
    ("ROL", 1): "1",
    ("ROL", 2): "AD",
    ("ROL", 3): "PP^Primary Care Provider^HL70443",
    ("ROL", 4): "D77^KILDARE^JAMES",
    ("MRG", 1): "100111^^^GENHOSP^MR",
}
SEGMENTS = ("MSH", "EVN", "PID", "PV1", "DG1", "NK1", "PD1", "ROL", "MRG")


def message(**changes: str) -> bytes:
    """BASE with some fields replaced, e.g. message(PID_29='""', PID_30="N")."""
    fields = dict(BASE)
    for name, text in changes.items():
        segment, number = name.split("_")
        fields[(segment, int(number))] = text
    lines = []
    for segment in SEGMENTS:
        last = max(number for seg, number in fields if seg == segment)
        values = [fields.get((segment, number), "") for number in range(1, last + 1)]
        if segment == "MSH":  # MSH-1 is the separator itself, MSH-2 the encoding characters
            values[:2] = ["^~\\&"]
        lines.append("|".join([segment, *values]))
    return ("\r".join(lines) + "\r").encode()


def event_of(raw: bytes) -> AdtEvent:
    return mapping.to_event(er7.parse(raw), NY)


@dataclass(frozen=True)
class Refused:
    """The mapping refuses the message, naming the field at fault."""

    ack_code: AckCode
    segment: str
    field: int


LIKE_EMPTY = object()  # the usual expectation for `""`: read as if the field were empty


@dataclass(frozen=True)
class Case:
    """One field: what it maps to when sent, when empty and when `""` (usually as empty)."""

    field: str  # "PID_29"
    sent: str
    read: Callable[[AdtEvent], Any]
    with_value: Any
    when_empty: Any
    context: tuple[tuple[str, str], ...] = ()  # other fields set for this case
    when_null: Any = LIKE_EMPTY


def names(event: AdtEvent) -> tuple[str, ...]:
    return tuple(kin.name for kin in event.next_of_kin)


def phones(event: AdtEvent) -> tuple[tuple[str, ...], bool]:
    return event.contact_numbers, event.contact_numbers_cleared


CASES = [
    Case("MSH_3", "EPIC", lambda e: e.header.sending_application, "EPIC", ""),
    # MSH-4 is optional: the facility is then the sending application (MSH-3)
    Case("MSH_4", "GENHOSP", lambda e: e.facility, "GENHOSP", "EPIC"),
    Case("MSH_5", "CAREBRIDGE", lambda e: e.header.receiving_application, "CAREBRIDGE", ""),
    Case("MSH_6", "CB", lambda e: e.header.receiving_facility, "CB", ""),
    Case(
        "MSH_7",
        "20250310143500",
        lambda e: e.occurred_at,
        MSH_TIME,
        None,
        context=(("EVN_2", ""), ("EVN_6", "")),
    ),
    Case(
        "MSH_9",
        "ADT^A03^ADT_A03",
        lambda e: (e.header.message_type, e.event_type),
        ("ADT", "A03"),
        Refused(AckCode.REJECT, "MSH", 9),
    ),
    Case(
        "MSH_10",
        "CTRL-1",
        lambda e: e.header.control_id,
        "CTRL-1",
        Refused(AckCode.REJECT, "MSH", 10),
    ),
    Case("MSH_11", "P", lambda e: e.header.processing_id, "P", ""),
    Case("MSH_12", "2.4", lambda e: e.header.version, "2.4", ""),
    Case("MSH_15", "AL", lambda e: e.header.accept_ack_type, "AL", ""),
    Case("MSH_16", "NE", lambda e: e.header.application_ack_type, "NE", ""),
    Case(
        "EVN_1",
        "A03",
        lambda e: e.event_type,
        "A03",
        Refused(AckCode.REJECT, "MSH", 9),
        context=(("MSH_9", "ADT"),),  # EVN-1 is read only without MSH-9.2
    ),
    Case(
        "EVN_2",
        "20250310143000",
        lambda e: e.occurred_at,
        EVN2_TIME,
        MSH_TIME,
        context=(("EVN_6", ""),),
    ),
    Case("EVN_6", "20250310141500", lambda e: e.occurred_at, EVN6_TIME, EVN2_TIME),
    Case(
        "PID_3",
        "100234^^^GENHOSP^MR",
        lambda e: [(p.id, p.assigning_authority, p.type_code) for p in e.patient_identifiers],
        [("100234", "GENHOSP", "MR")],
        Refused(AckCode.ERROR, "PID", 3),  # a required field of every ADT structure
    ),
    Case(
        "PID_13",
        "^PRN^PH^^1^413^5550142",
        phones,
        (("4135550142",), False),
        ((), False),
        context=(("PID_14", ""),),
        when_null=((), True),  # the null deletes the numbers; empty leaves them alone
    ),
    Case(
        "PID_14",
        "(413)555-0199",
        phones,
        (("(413)555-0199",), False),
        ((), False),
        context=(("PID_13", ""),),
        when_null=((), True),
    ),
    Case("PID_15", "SPA^Spanish^ISO6392", lambda e: e.language, "SPA", ""),
    Case("PID_29", "20250309220000", lambda e: e.death_indicator, True, False),
    Case("PID_30", "Y", lambda e: e.death_indicator, True, False),
    Case("PV1_2", "I", lambda e: e.patient_class, "I", Refused(AckCode.ERROR, "PV1", 2)),
    Case("PV1_3", "4W^401^A^GENHOSP", lambda e: e.location, "4W", ""),
    Case("PV1_4", "E", lambda e: e.admission_type, "E", ""),
    Case(
        "PV1_19",
        "V0000123^^^GENHOSP^VN",
        lambda e: e.visit_number,
        "V0000123",
        Refused(AckCode.ERROR, "PV1", 19),
    ),
    Case("PV1_36", "01", lambda e: e.discharge_disposition, "01", ""),
    Case("PV1_44", "20250305080000", lambda e: e.admitted_at, ADMITTED, None),
    Case("PV1_45", "20250310140000", lambda e: e.discharged_at, DISCHARGED, EVN6_TIME),
    Case("DG1_3", "I50.9^Heart failure^I10", lambda e: e.diagnosis_codes, ("I50.9",), ()),
    Case("NK1_2", "DOE^JOHN", names, ("JOHN DOE",), ("",)),
    Case(
        "NK1_3",
        "SPO^Spouse",
        lambda e: tuple(kin.relationship for kin in e.next_of_kin),
        ("SPO",),
        ("",),
    ),
    Case(
        "NK1_5",
        "(413)555-0143",
        lambda e: tuple(kin.phone for kin in e.next_of_kin),
        ("(413)555-0143",),
        ("",),
    ),
    Case("PD1_4", "1234567890^WELBY", lambda e: e.pcp_ids, ("1234567890", "D77"), ("D77",)),
    Case("ROL_3", "PP", lambda e: e.pcp_ids, ("1234567890", "D77"), ("1234567890",)),
    Case("ROL_4", "D77^KILDARE", lambda e: e.pcp_ids, ("1234567890", "D77"), ("1234567890",)),
    Case(
        "MRG_1",
        "100111^^^GENHOSP^MR",
        lambda e: [p.id for p in e.merged_identifiers],
        ["100111"],
        [],
    ),
]


def outcome(case: Case, sent: str) -> Any:
    """What the mapping makes of the message with case.field set to `sent`."""
    raw = message(**dict(case.context), **{case.field: sent})
    try:
        return case.read(event_of(raw))
    except HL7Error as refusal:
        return Refused(refusal.ack_code, refusal.segment, refusal.field)


@pytest.mark.parametrize("case", CASES, ids=[case.field for case in CASES])
@pytest.mark.parametrize("variant", ["value", "empty", "null"])
def test_each_field_with_a_value_empty_and_the_null(case: Case, variant: str) -> None:
    sent = {"value": case.sent, "empty": "", "null": NULL}[variant]
    expected = {"value": case.with_value, "empty": case.when_empty, "null": case.when_null}[variant]
    if expected is LIKE_EMPTY:
        expected = case.when_empty
    assert outcome(case, sent) == expected


def test_the_base_message_maps_without_a_refusal() -> None:
    event = event_of(message())
    assert event.event_type == "A03"
    assert event.death_indicator is False
    assert event.contact_numbers == ("4135550142", "(413)555-0199")
    assert event.contact_numbers_cleared is False


@pytest.mark.parametrize(
    ("pid13", "pid14", "numbers", "cleared"),
    [
        (NULL, NULL, (), True),
        (NULL, "", (), True),
        ("", NULL, (), True),
        ("", "", (), False),
        (NULL, "(413)555-0199", ("(413)555-0199",), False),  # the other field replaces them
        ('""^PRN^PH', "", (), False),  # a null number component is not a null field
    ],
)
def test_contact_numbers_are_cleared_only_by_the_null(
    pid13: str, pid14: str, numbers: tuple[str, ...], cleared: bool
) -> None:
    event = event_of(message(PID_13=pid13, PID_14=pid14))
    assert (event.contact_numbers, event.contact_numbers_cleared) == (numbers, cleared)


def router() -> AdtRouter:
    return AdtRouter(
        None, None, library=load_library(PROTOCOLS), key_secret="test", task_queue="tq"
    )


@pytest.mark.parametrize(
    ("pid13", "pid14", "signalled"),
    [
        (NULL, NULL, ()),  # delete: the transition's numbers become none
        (NULL, "", ()),
        ("", "", None),  # not sent: unchanged
        ("^PRN^PH^^1^413^5550142", "", ("4135550142",)),  # replace
    ],
)
def test_an_a08_signal_clears_replaces_or_keeps_the_numbers(
    pid13: str, pid14: str, signalled: tuple[str, ...] | None
) -> None:
    event = event_of(message(MSH_9="ADT^A08^ADT_A01", EVN_1="A08", PID_13=pid13, PID_14=pid14))
    signal = router()._signal_of(event, EVN6_TIME)
    assert signal.contact_numbers == signalled


def test_null_death_time_with_pid30_n_is_a_living_patient_on_discharge_home() -> None:
    event = event_of(message(PID_29=NULL, PID_30="N"))
    assert event.death_indicator is False
    selection = load_library(PROTOCOLS).select(event)
    assert selection.protocol is not None
    assert selection.protocol.id == "discharge-home"


def test_null_pid30_alone_is_not_death() -> None:
    assert event_of(message(PID_30=NULL)).death_indicator is False


def test_a_death_time_counts_even_with_pid30_n() -> None:
    event = event_of(message(PID_29="20250309220000", PID_30="N"))
    assert event.death_indicator is True
    selection = load_library(PROTOCOLS).select(event)
    assert selection.protocol is not None
    assert selection.protocol.id == "expired"


def test_an_a08_with_null_death_fields_does_not_signal_a_death() -> None:
    event = event_of(message(MSH_9="ADT^A08^ADT_A01", EVN_1="A08", PID_29=NULL, PID_30=NULL))
    assert router()._signal_of(event, EVN6_TIME).deceased is False


def test_null_discharge_time_on_an_a03_is_the_event_time() -> None:
    assert event_of(message(PV1_45=NULL)).discharged_at == EVN6_TIME


def test_null_trigger_component_falls_back_to_evn1() -> None:
    assert event_of(message(MSH_9='ADT^""', EVN_1="A03")).event_type == "A03"


@pytest.mark.parametrize(("field", "segment", "number"), [("MRG_1", "MRG", 1), ("PID_3", "PID", 3)])
def test_an_a40_with_a_null_identifier_is_refused_like_an_empty_one(
    field: str, segment: str, number: int
) -> None:
    for sent in ("", NULL):
        raw = message(MSH_9="ADT^A40^ADT_A39", EVN_1="A40", **{field: sent})
        with pytest.raises(HL7Error) as info:
            event_of(raw)
        assert (info.value.ack_code, info.value.segment, info.value.field) == (
            AckCode.ERROR,
            segment,
            number,
        )


def test_er7_value_never_returns_the_two_quotes_and_is_null_tells_them_apart() -> None:
    parsed = er7.parse(message(PID_29=NULL, PID_13='""^PRN^PH', PID_30=""))
    assert er7.value(parsed, "PID", 29) == ""
    assert er7.is_null(parsed, "PID", 29)
    assert er7.value(parsed, "PID", 30) == ""
    assert not er7.is_null(parsed, "PID", 30)  # empty: not sent
    assert not er7.is_null(parsed, "PID", 13)  # only its first component is null
    assert er7.is_null(parsed, "PID", 13, 1, 1)
    assert er7.value(parsed, "PID", 13, 1, 1) == ""
    assert er7.value(parsed, "PID", 13, 1, 2) == "PRN"
    assert not er7.is_null(parsed, "ZZZ", 1)  # an absent segment is not a null


def test_the_second_of_repeated_segments_is_read_through_the_same_helpers() -> None:
    raw = (
        message()
        .replace(b"NK1|1|", b'NK1|1|""|""|||""\rNK1|2|')
        .replace(b"DG1|1||", b'DG1|1||""\rDG1|2||')
    )
    event = event_of(raw)
    assert [kin.name for kin in event.next_of_kin] == ["JOHN DOE"]
    assert event.diagnosis_codes == ("I50.9",)
    parsed = er7.parse(raw)
    assert er7.occurrences(parsed, "NK1") == 2
    assert er7.is_null(parsed, "NK1", 2, occurrence=1)
    assert not er7.is_null(parsed, "NK1", 2, occurrence=2)


def test_plan_succeeds_for_an_a03_with_a_null_discharge_time(tmp_path: Path) -> None:
    path = tmp_path / "a03_null_pv1_45.hl7"
    path.write_bytes(message(PV1_45=NULL))
    result = CliRunner().invoke(app, ["plan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["protocol"] == "discharge-home"
    assert body["discharged_at"] == EVN6_TIME.isoformat()


def test_a_parser_that_gives_none_for_the_null_reads_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """python-hl7 0.4.5 keeps `""` as text; were it to give None, er7 must still agree."""
    original = hl7.Segment.extract_field

    def none_for_null(self: hl7.Segment, *path: int) -> Any:
        leaf = original(self, *path)
        return None if leaf == NULL else leaf

    monkeypatch.setattr(hl7.Segment, "extract_field", none_for_null)
    parsed = er7.parse(message(PID_29=NULL))
    assert er7.value(parsed, "PID", 29) == ""
    assert er7.is_null(parsed, "PID", 29, 1)
    assert event_of(message(PID_29=NULL, PV1_45=NULL)).death_indicator is False
