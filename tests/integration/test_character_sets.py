"""Character sets over MLLP: a message that says 8859/1 in MSH-18 is read in 8859/1 (its
hex escapes too, its formatting escapes as text), and answered in 8859/1."""

from __future__ import annotations

import asyncio
import uuid
from zoneinfo import ZoneInfo

import pytest

from ingest import er7, mapping
from tests.helpers import MllpClient, a03, assert_eventually, msa
from tests.integration.conftest import RunningStack

# NK1-2: family "L\XC9\VESQUE\H\" (a hex escape, highlighting), given "JOSÉ\.br\MARIE" with
# É as the 8859/1 byte 0xC9 and a line break; MSH-3 "SANTÉ", which the ACK echoes in MSH-5.
KIN = b"NK1|1|L\\XC9\\VESQUE\\H\\^JOS\xc9\\.br\\MARIE|SPO^Spouse\r"
CAREGIVER = "JOS\u00c9 MARIE L\u00c9VESQUE"


def latin1_message(facility: str, control_id: str) -> bytes:
    msh, rest = (a03(facility=facility, control_id=control_id) + KIN).split(b"\r", 1)
    fields = msh.split(b"|")
    fields[2] = b"SANT\xc9"  # MSH-3 (fields[n - 1] is MSH-n)
    fields += [b""] * (17 - len(fields)) + [b"8859/1"]  # MSH-13..17 empty, MSH-18
    return b"|".join(fields) + b"\r" + rest


async def exchange_bytes(client: MllpClient, payload: bytes) -> bytes:
    """One exchange, the reply as the bytes on the wire (MllpClient.reply reads UTF-8)."""
    await client.send_raw(b"\x0b" + payload + b"\x1c\x0d")
    data = await asyncio.wait_for(client.reader.readuntil(b"\x1c\x0d"), 20)
    return data.strip(b"\x0b\x1c\r")


async def answer_to_latin1_message(stack: RunningStack) -> tuple[bytes, bytes, str]:
    facility = f"CS{uuid.uuid4().hex[:6].upper()}"
    raw = latin1_message(facility, f"CS{uuid.uuid4().hex[:10]}")
    client = await MllpClient.connect(stack.mllp_port)
    try:
        reply = await exchange_bytes(client, raw)
    finally:
        await client.close()
    return raw, reply, facility


async def test_an_8859_1_message_is_read_and_answered_in_8859_1(stack: RunningStack) -> None:
    raw, reply, facility = await answer_to_latin1_message(stack)
    with pytest.raises(UnicodeDecodeError):
        reply.decode("utf-8")  # É went back as the one byte 0xC9, not UTF-8's C3 89
    ack = reply.decode("latin-1")
    assert msa(ack)[1] == "AA"
    assert ack.split("\r")[0].split("|")[4] == "SANT\u00c9"  # MSH-5: the sender's MSH-3

    event = mapping.to_event(er7.parse(raw), ZoneInfo("America/New_York"))
    assert [kin.name for kin in event.next_of_kin] == [CAREGIVER]

    async def stored() -> str:
        tid = await stack.services.pool.fetchval(
            "SELECT transition_id FROM transitions WHERE facility = $1", facility
        )
        assert tid is not None
        plan = (await stack.http.get(f"/transitions/{tid}/care-plan")).json()
        names: list[str] = [c["name"] for c in plan["caregivers"]]
        assert names == [CAREGIVER]
        return names[0]

    assert await assert_eventually(stored, within=60) == CAREGIVER


async def test_the_ack_names_the_character_set_it_is_written_in(stack: RunningStack) -> None:
    _, reply, _ = await answer_to_latin1_message(stack)
    msh = reply.decode("latin-1").split("\r")[0].split("|")
    assert len(msh) == 18 and msh[17] == "8859/1"  # MSH-18 (msh[n - 1] is MSH-n)
