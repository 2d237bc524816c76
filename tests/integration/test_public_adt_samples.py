"""Real ADT test messages from open-source HL7 projects (tests/fixtures/public_adt, where
SOURCES.md says where each comes from), sent byte-exact over MLLP, one frame each (issue 15).

Every sample gets exactly one reply that echoes its MSH-10, or none where its MSH-15 asks
for none (enhanced mode: the commit ACK is the reply on the connection, the application ACK
is kept on the inbox row, the stack's site routing none). A probe message sent after it on
the same connection gets its own MSH-10 back: nothing else was pending. A well-formed ADT
message is accepted (AA, CA in enhanced mode); a sample that breaks a rule of the standard
is listed in NOT_WELL_FORMED with the rule and the code it must get, unless carebridge
documents that it reads it leniently (LENIENT: answered as well-formed). Whatever the
answer, the message is in adt_inbox afterwards with the bytes that were sent (a batch: each
of its messages).

The samples reuse control ids (MSG00001, controlID) and facilities: they are sent as they
are, and carebridge stores each different message on its own row. Their dates are old (or
in the future): no assertion depends on today's date.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import asyncpg
import pytest

from store.inbox import content_key
from tests.helpers import FIXTURES, MllpClient, a03, msa
from tests.integration.conftest import RunningStack

SAMPLES = FIXTURES / "public_adt"
START, END = b"\x0b", b"\x1c\x0d"
_LINE = re.compile(rb"[^\r\n]+")


@dataclass(frozen=True)
class Expected:
    """The application ACK code a sample must get and why; for a refusal, the segments its
    ERR may name (the rule the sample breaks)."""

    code: str
    reason: str
    err_segments: frozenset[str] = frozenset()


WELL_FORMED = Expected("AA", "well-formed")
# Samples that break a rule of the HL7 standard: the code they must get and the rule.
NOT_WELL_FORMED: dict[str, Expected] = {
    "fhir-converter/ADT04-251.hl7": Expected(
        "AE",
        "no EVN segment: ADT_A01 (used by A04) is MSH [SFT] EVN PID ..., EVN required",
        frozenset({"EVN"}),
    ),
    "hl7v2-fhir-converter/HL7ADTMessageTest_a40_trailing_pid.hl7": Expected(
        "AE",
        "the fourth PID has no MRG: each PATIENT group of ADT_A39 (A40) is PID [PD1] MRG [PV1]",
        frozenset({"PID", "MRG"}),
    ),
    "nhapi/PipeParserV23Tests_a08_8859_1.hl7": Expected(
        "AE", "no PV1 segment: ADT_A01 (used by A08) requires PV1 after PID", frozenset({"PV1"})
    ),
    "nhapi/PipeParserV23Tests_a08_in1_repetitions.hl7": Expected(
        "AE", "no PV1 segment: ADT_A01 (used by A08) requires PV1 after PID", frozenset({"PV1"})
    ),
    "nhapi/PipeParserV25Tests_a28_minimal.hl7": Expected(
        "AE",
        "required fields empty: EVN-2 recorded date/time, PID-3 (the id is in PID-2), PID-5, "
        "PV1-2 patient class",
        frozenset({"EVN", "PID", "PV1"}),
    ),
    "nhapi/PipeParserV251Tests_a04_minimal.hl7": Expected(
        "AE",
        "required fields empty: EVN-2 recorded date/time, PID-3 (the id is in PID-2), PID-5, "
        "PV1-2 patient class",
        frozenset({"EVN", "PID", "PV1"}),
    ),
}

# Samples that break a rule of the standard in a way carebridge documents it reads (README
# "What the listener accepts"): answered as well-formed ones.
LENIENT: dict[str, str] = {
    name: "MSH-2 is ^~\\\\& (five characters, escape and subcomponent both a backslash): "
    "read as ^~\\& by design (README; issue 15 item 6), said in MSA-3"
    for name in (
        "hl7v2-fhir-converter/ADT-multiline.hl7",
        "hl7v2-fhir-converter/sample_unix.hl7",
        "hl7v2-fhir-converter/sample_win.hl7",
    )
}


def sample_names() -> list[str]:
    return sorted(path.relative_to(SAMPLES).as_posix() for path in SAMPLES.rglob("*.hl7"))


@dataclass(frozen=True)
class Sent:
    """One message of the frame as sent: its bytes and the MSH fields the replies depend on."""

    raw: bytes
    control_id: str
    accept_ack_type: str  # MSH-15
    application_ack_type: str  # MSH-16

    @property
    def enhanced(self) -> bool:
        return bool(self.accept_ack_type or self.application_ack_type)


def _msh_field(line: bytes, number: int) -> str:
    fields = line.split(line[3:4])  # fields[n - 1] is MSH-n
    return fields[number - 1].decode("latin-1") if len(fields) >= number else ""


def messages_in(payload: bytes) -> list[Sent]:
    """The messages of a frame, each from its MSH to the next MSH or batch trailer, as the
    HL7 batch protocol delimits them (a frame without a batch header holds one)."""
    lines = [(m.start(), m.group()) for m in _LINE.finditer(payload) if m.group().strip()]
    starts = [start for start, line in lines if line.startswith(b"MSH")]
    ends = [start for start, line in lines if line[:3] in (b"BTS", b"FTS")]
    found = []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else min(ends, default=len(payload))
        line = next(text for at, text in lines if at == start)
        found.append(
            Sent(
                raw=payload[start:end],
                control_id=_msh_field(line, 10),
                accept_ack_type=_msh_field(line, 15).upper(),
                application_ack_type=_msh_field(line, 16).upper(),
            )
        )
    return found


def is_batch(payload: bytes) -> bool:
    return payload.lstrip()[:3] in (b"FHS", b"BHS")


def commit_reply_wanted(accept_ack_type: str) -> bool:
    """Table 0155 for the commit ACK of a message that was stored: AL (or empty) and SU."""
    return accept_ack_type in ("", "AL", "SU")


def msa_segments(reply: str) -> list[list[str]]:
    return [line.split("|") for line in reply.split("\r") if line.startswith("MSA")]


def err_segment(ack: str) -> str:
    """The segment an ACK's ERR names: ERR-2 (v2.5 on), else ERR-1 (before v2.5)."""
    line = next((line for line in ack.split("\r") if line.startswith("ERR")), "")
    fields = line.split("|")
    location = fields[2] if len(fields) > 2 and fields[2] else fields[1] if len(fields) > 1 else ""
    return location.split("^")[0]


async def stored_rows(pool: asyncpg.Pool, message: Sent) -> list[asyncpg.Record]:
    """The inbox rows holding this message: its bytes as sent, or (a retransmission of an
    earlier sample that differs in line endings only) the same content."""
    return await pool.fetch(
        "SELECT ack, status FROM adt_inbox WHERE content_hash = $1 ORDER BY id",
        content_key(message.raw),
    )


@pytest.mark.parametrize("name", sample_names())
async def test_a_public_sample_gets_one_correct_reply_and_is_kept(
    stack: RunningStack, name: str
) -> None:
    payload = (SAMPLES / name).read_bytes()
    expected = NOT_WELL_FORMED.get(name, WELL_FORMED)
    messages = messages_in(payload)
    assert messages, f"{name} holds no MSH segment"
    probe_control = f"PROBE{uuid.uuid4().hex[:12]}"
    client = await MllpClient.connect(stack.mllp_port)
    try:
        await client.send_raw(START + payload + END)
        batch = is_batch(payload)
        single = messages[0]
        wanted = batch or not single.enhanced or commit_reply_wanted(single.accept_ack_type)
        reply = await client.reply() if wanted else None
        probe = await client.exchange(a03(control_id=probe_control))
    finally:
        await client.close()
    assert msa(probe)[1:3] == ["AA", probe_control], "a reply to the sample was still pending"

    if batch:
        assert reply is not None
        answers = msa_segments(reply)
        assert [answer[2] for answer in answers] == [m.control_id for m in messages]
        assert {answer[1] for answer in answers} == {expected.code}, reply
    elif single.enhanced:
        if reply is not None:
            assert msa(reply)[1:3] == ["CA", single.control_id], reply
    else:
        assert reply is not None
        assert msa(reply)[1:3] == [expected.code, single.control_id], reply

    for message in messages:
        rows = await stored_rows(stack.services.pool, message)
        assert rows, f"{name}: message {message.control_id} is not in adt_inbox"
        application_ack = rows[0]["ack"]
        assert application_ack is not None, f"{name}: stored without an answer"
        assert msa(application_ack)[1:3] == [expected.code, message.control_id], application_ack
        if expected.err_segments:
            assert err_segment(application_ack) in expected.err_segments, application_ack


def test_the_samples_come_from_several_projects_and_are_all_listed() -> None:
    names = sample_names()
    sources = (SAMPLES / "SOURCES.md").read_text(encoding="utf-8")
    assert len({name.split("/")[0] for name in names}) >= 4
    assert 25 <= len(names) <= 40
    assert [name for name in names if f"`{name}`" not in sources] == []
    assert set(NOT_WELL_FORMED) | set(LENIENT) <= set(names)
    assert not set(NOT_WELL_FORMED) & set(LENIENT)
