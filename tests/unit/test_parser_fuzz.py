"""Property tests: whatever bytes arrive, the parser either maps them or says why (HL7Error),
and never raises anything else."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import er7, example_messages, mapping
from ingest.ack import build_ack
from ingest.errors import HL7Error
from schemas.adt import AckCode
from tests.helpers import FIXTURES

NY = ZoneInfo("America/New_York")
SENT = datetime(2026, 11, 20, 19, 30, tzinfo=UTC)
REAL = [
    (FIXTURES / name).read_bytes()
    for name in ("adt_a03.hl7", "adt_a03_lf_v23.hl7", "adt_a08.hl7", "adt_a03_high_risk.hl7")
] + [
    example_messages.render(example_messages.build(kind, now=SENT, zone=NY)).encode()
    for kind in example_messages.KINDS
]


def parse_or_explain(raw: bytes) -> None:
    try:
        message = er7.parse(raw)
        header = mapping.header(message)
        mapping.to_event(message, NY)
    except HL7Error as error:
        assert error.ack_code in (AckCode.ERROR, AckCode.REJECT)
        assert str(error)
        header = None
    # An ACK can always be built, and it parses back.
    ack = build_ack(
        header,
        AckCode.ERROR,
        text="x",
        now=er7.parse_timestamp("20260101", NY, segment="MSH", field=7),
    )  # type: ignore[arg-type]
    assert er7.value(er7.parse(ack.encode()), "MSA", 1) == "AE"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(raw: bytes) -> None:
    parse_or_explain(raw)


def control_id(raw: bytes) -> bytes:
    """MSH-10 of a well-formed message."""
    return re.split(rb"[\r\n]", raw, maxsplit=1)[0].split(b"|")[9]


@st.composite
def mutated(
    draw: st.DrawFn, fresh_control_id: bool = False, sources: Sequence[bytes] = REAL
) -> bytes:
    """A real message with a few bytes inserted, deleted or replaced. With a fresh control
    id, a mutant never shares MSH-10 with its source (the inbox would re-send its ACK)."""
    raw = draw(st.sampled_from(sources))
    if fresh_control_id:
        fresh = f"FUZZ-{draw(st.uuids()).hex[:12]}".encode()
        raw = raw.replace(control_id(raw), fresh)
    raw = bytearray(raw)
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        position = draw(st.integers(min_value=0, max_value=len(raw)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from(list(b"|^~\\&\r\n#0A \x00\xff")))
        if action == "insert":
            raw.insert(position, byte)
        elif raw and position < len(raw):
            if action == "delete":
                del raw[position]
            else:
                raw[position] = byte
    return bytes(raw)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_real_messages(raw: bytes) -> None:
    parse_or_explain(raw)
