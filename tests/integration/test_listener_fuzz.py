"""Property test on the running listener: arbitrary and mutated frames, pipelined on one
connection, each get exactly one ACK (original mode), in order, and the listener survives."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ingest import er7, example_messages, mapping
from ingest.ack import is_enhanced_mode
from ingest.errors import HL7Error
from tests.helpers import MllpClient, a03, msa
from tests.integration.conftest import RunningStack
from tests.unit.test_parser_fuzz import mutated


def original_mode(payload: bytes) -> bool:
    try:
        return not is_enhanced_mode(mapping.header(er7.parse(payload)))
    except HL7Error:
        return True


# Messages timed from now (a fixed-date discharge would be one whose period is over).
LIVE = [
    example_messages.render(example_messages.build(kind)).encode()
    for kind in ("a03", "a03-high-risk", "a03-home-health", "a08")
]
frames = st.lists(
    st.one_of(st.binary(max_size=600), mutated(fresh_control_id=True, sources=LIVE)),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payloads=frames)
async def test_every_frame_gets_exactly_one_ack(stack: RunningStack, payloads: list[bytes]) -> None:
    for payload in payloads:
        # a block byte inside a payload frames it differently (the reader resynchronises on
        # every 0x0B and 0x1C): such a payload is not one frame
        assume(b"\x1c" not in payload and b"\x0b" not in payload and original_mode(payload))
    client = await MllpClient.connect(stack.mllp_port)
    try:
        await client.send_raw(b"".join(b"\x0b" + p + b"\x1c\x0d" for p in payloads))
        acks = [await client.reply() for _ in payloads]
        # Nothing more is owed: the next reply answers the next message.
        probe = await client.exchange(a03())
    finally:
        await client.close()
    assert all(msa(ack)[1] in ("AA", "AE", "AR") for ack in acks)
    assert msa(probe)[1] == "AA"
