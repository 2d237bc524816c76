"""Error text names the field and the problem, never the value (issue 18 item 9): a patient's
name sent in a timestamp field is in none of the ACK, the inbox row's error or the log."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import MllpClient, a03, msa, with_field
from tests.integration.conftest import RunningStack

NAME = "ZEBEDIAHQUIXOTE"


async def test_a_name_in_a_malformed_timestamp_is_not_echoed_anywhere(
    stack: RunningStack, capsys: pytest.CaptureFixture[str]
) -> None:
    control = f"PHI{uuid.uuid4().hex[:8]}"
    raw = with_field(a03(control_id=control), "PV1", 45, NAME)
    client = await MllpClient.connect(stack.mllp_port)
    try:
        reply = await client.exchange(raw)
    finally:
        await client.close()
    assert msa(reply)[1:3] == ["AE", control]
    assert "PV1^1^45" in reply and "not an HL7 timestamp" in reply
    row = await stack.services.pool.fetchrow(
        "SELECT error, decision, ack FROM adt_inbox WHERE control_id = $1", control
    )
    assert row is not None and "not an HL7 timestamp" in row["error"]
    logged = capsys.readouterr()
    assert "adt.rejected" in logged.out + logged.err  # the log is seen here
    for text in (reply, row["error"], row["decision"] or "", row["ack"], logged.out, logged.err):
        assert NAME not in text
