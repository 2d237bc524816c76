"""MSH-2 as files written from source code have it: a doubled backslash (`^~\\\\&`) is read as
`^~\\&` and the message is processed; an MSH-2 that stays invalid (`^\\&`) is refused, but
its AR still echoes MSH-10 in MSA-2, so the sender can match it (issue 15, item 6)."""

from __future__ import annotations

import uuid

from tests.helpers import MllpClient, a03, inbox_rows_with_raw, msa
from tests.integration.conftest import RunningStack

STANDARD = b"MSH|^~\\&|"


async def test_a_doubled_backslash_is_read_and_an_invalid_msh_2_still_gets_its_msa_2(
    stack: RunningStack,
) -> None:
    doubled, invalid = f"DBL{uuid.uuid4().hex[:8]}", f"BAD{uuid.uuid4().hex[:8]}"
    from_source_code = a03(control_id=doubled).replace(STANDARD, b"MSH|^~\\\\&|", 1)
    three_characters = a03(control_id=invalid).replace(STANDARD, b"MSH|^\\&|", 1)
    client = await MllpClient.connect(stack.mllp_port)
    try:
        read = await client.exchange(from_source_code)
        refused = await client.exchange(three_characters)
    finally:
        await client.close()
    assert msa(read)[1:3] == ["AA", doubled], read
    assert read.startswith(STANDARD.decode())  # answered in the delimiters it meant
    assert msa(refused)[1:3] == ["AR", invalid], refused
    assert "|EPIC|" in refused.split("\r")[0]  # addressed back to the sender (MSH-5)
    pool, cipher = stack.services.pool, stack.services.field_cipher
    [read_row] = await inbox_rows_with_raw(pool, cipher, from_source_code)
    [refused_row] = await inbox_rows_with_raw(pool, cipher, three_characters)
    assert read_row["status"] == "processed"
    assert refused_row["status"] == "rejected"  # the refused one kept as a dead letter
    assert "doubled backslash" in read_row["decision"]  # read leniently, and the row says so
    assert "doubled backslash" in msa(read)[3]


async def test_versions_2_8_1_2_8_2_and_2_9_are_accepted_and_answered_in_their_version(
    stack: RunningStack,
) -> None:
    client = await MllpClient.connect(stack.mllp_port)
    try:
        for version in ("2.8.1", "2.8.2", "2.9"):
            control = f"V{uuid.uuid4().hex[:8]}"
            raw = a03(control_id=control).replace(b"|P|2.5.1", f"|P|{version}".encode(), 1)
            assert f"|P|{version}".encode() in raw
            ack = await client.exchange(raw)
            assert msa(ack)[1:3] == ["AA", control], ack
            assert ack.split("\r")[0].endswith(f"|P|{version}"), ack
    finally:
        await client.close()
