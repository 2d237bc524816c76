"""MLLP framing over real TCP, byte for byte (issue 15, items 2-4): a start block inside an
open frame restarts it (the aborted bytes are kept, never answered), an end block split
across reads or sent without its CR still ends the frame, one frame holds one message (two
MSH segments are refused), and a BHS/BTS batch is split, each message stored and answered,
in one batch acknowledgment."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from tests.helpers import MllpClient, a03, inbox_rows_with_raw, msa, segment
from tests.integration.conftest import RunningStack

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"


def control() -> str:
    return f"FR{uuid.uuid4().hex[:14]}"


def facility() -> str:
    return f"FAC{uuid.uuid4().hex[:6].upper()}"


async def reply(client: MllpClient, within: float = 10.0) -> str:
    data = await asyncio.wait_for(client.reader.readuntil(EB + CR), within)
    return data.strip(b"\x0b\x1c\r").decode()


async def nothing_more(client: MllpClient, within: float = 0.5) -> None:
    """No further byte arrives: the listener owes (and sends) nothing else."""
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.reader.read(1), within)


async def status_of(pool: asyncpg.Pool, control_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT status FROM adt_inbox WHERE control_id = $1 ORDER BY id", control_id
    )
    return [row["status"] for row in rows]


async def rows_with_raw(stack: RunningStack, raw: bytes) -> list[dict[str, Any]]:
    return await inbox_rows_with_raw(stack.services.pool, stack.services.field_cipher, raw)


def segments(text: str, name: str) -> list[list[str]]:
    return [s.split("|") for s in text.split("\r") if s.startswith(name)]


async def test_a_frame_aborted_by_a_new_start_block_is_kept_and_the_full_one_answered(
    stack: RunningStack,
) -> None:
    place = facility()
    cut, full, probe = control(), control(), control()
    aborted = b"\r".join(a03(facility=place, visit="V-CUT", control_id=cut).split(b"\r")[:2])
    message = a03(facility=place, visit="V-FULL", control_id=full)
    client = await MllpClient.connect(stack.mllp_port)
    try:
        await client.send_raw(SB + aborted + SB + message + EB + CR)
        answer = await reply(client)
        await nothing_more(client)  # no reply for the aborted part
        after = await client.exchange(a03(facility=place, visit="V-PROBE", control_id=probe))
    finally:
        await client.close()
    assert msa(answer)[1:3] == ["AA", full]
    assert msa(after)[1:3] == ["AA", probe]
    pool = stack.services.pool
    assert await status_of(pool, full) == ["processed"]
    assert await status_of(pool, cut) == []  # nothing of the aborted message was processed
    kept = await rows_with_raw(stack, aborted)
    assert [(row["status"], row["ack_code"]) for row in kept] == [("rejected", "AR")]


async def test_an_oversized_frame_whose_end_block_is_split_across_reads_resynchronises(
    stack: RunningStack,
) -> None:
    limit = stack.services.settings.max_message_bytes
    huge = a03(control_id=control()) + b"ZXX|" + b"x" * (limit + 10) + b"\r"
    after = control()
    client = await MllpClient.connect(stack.mllp_port)
    try:
        await client.send_raw(SB + huge + EB)  # the read ends on 0x1C ...
        refused = await reply(client)
        await asyncio.sleep(0.3)  # ... and the listener has read all of it
        await client.send_raw(CR + SB + a03(control_id=after) + EB + CR)  # 0x0D comes next
        answer = await reply(client)
    finally:
        await client.close()
    assert msa(refused)[1] == "AR" and "byte limit" in msa(refused)[3]
    assert msa(answer)[1:3] == ["AA", after]
    assert await status_of(stack.services.pool, after) == ["processed"]


async def test_an_end_block_without_cr_ends_the_frame(stack: RunningStack) -> None:
    place = facility()
    first, second = control(), control()
    one = a03(facility=place, visit="V-1", control_id=first)
    two = a03(facility=place, visit="V-2", control_id=second)
    client = await MllpClient.connect(stack.mllp_port)
    try:
        await client.send_raw(SB + one + EB + SB + two + EB + CR)
        answers = [await reply(client), await reply(client)]
    finally:
        await client.close()
    assert [msa(a)[1:3] for a in answers] == [["AA", first], ["AA", second]]
    pool = stack.services.pool
    assert await status_of(pool, first) == ["processed"]
    assert await status_of(pool, second) == ["processed"]


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"])
async def test_two_messages_in_one_frame_are_refused_together(
    stack: RunningStack, separator: str
) -> None:
    place = facility()
    first, second = control(), control()
    both = a03(facility=place, visit="V-1", control_id=first, separator=separator) + a03(
        facility=place, visit="V-2", control_id=second, separator=separator
    )
    client = await MllpClient.connect(stack.mllp_port)
    try:
        answer = await client.exchange(both)
        await nothing_more(client)
    finally:
        await client.close()
    assert msa(answer)[1:3] == ["AR", first]
    assert "one message per frame" in msa(answer)[3]
    err = segment(answer, "ERR")
    assert err is not None and "MSH^2^" in err and "100" in err
    pool = stack.services.pool
    assert [row["status"] for row in await rows_with_raw(stack, both)] == ["rejected"]
    assert await status_of(pool, first) == [] and await status_of(pool, second) == []


def batch(messages: list[bytes], *, file: bool, batch_id: str, file_id: str = "") -> bytes:
    head = b"BHS|^~\\&|EPIC|GENHOSP|CAREBRIDGE|CB|20261201120000||||" + batch_id.encode() + CR
    tail = b"BTS|" + str(len(messages)).encode() + CR
    if file:
        head = (
            b"FHS|^~\\&|EPIC|GENHOSP|CAREBRIDGE|CB|20261201120000||||"
            + file_id.encode()
            + CR
            + head
        )
        tail += b"FTS|1" + CR
    return head + b"".join(messages) + tail


@pytest.mark.parametrize("file", [True, False], ids=["fhs-bhs", "bhs-only"])
async def test_a_batch_is_split_stored_and_answered_with_one_batch_ack(
    stack: RunningStack, file: bool
) -> None:
    place = facility()
    ids = [control() for _ in range(3)]
    messages = [
        a03(facility=place, visit=f"V-{n}", control_id=c) for n, c in enumerate(ids, start=1)
    ]
    batch_id, file_id = control(), control()
    client = await MllpClient.connect(stack.mllp_port)
    try:
        answer = await client.exchange(
            batch(messages, file=file, batch_id=batch_id, file_id=file_id)
        )
        await nothing_more(client)  # one frame answers the whole batch
    finally:
        await client.close()
    names = [s[:3] for s in answer.split("\r") if s]
    expected_head = ["FHS", "BHS"] if file else ["BHS"]
    expected_tail = ["BTS", "FTS"] if file else ["BTS"]
    assert names == expected_head + ["MSH", "MSA"] * 3 + expected_tail
    (bhs,) = segments(answer, "BHS")
    assert bhs[2:6] == ["CAREBRIDGE", "CB", "EPIC", "GENHOSP"]  # sender and receiver swapped
    assert bhs[11] == batch_id and bhs[10] and bhs[10] != batch_id
    if file:
        (fhs,) = segments(answer, "FHS")
        assert fhs[11] == file_id
        assert segments(answer, "FTS") == [["FTS", "1"]]
    assert [m[1:3] for m in segments(answer, "MSA")] == [["AA", c] for c in ids]
    assert segments(answer, "BTS")[0][1] == "3"
    for c in ids:
        assert await status_of(stack.services.pool, c) == ["processed"]


async def test_an_empty_batch_gets_an_empty_batch_ack(stack: RunningStack) -> None:
    batch_id = control()
    client = await MllpClient.connect(stack.mllp_port)
    try:
        answer = await client.exchange(batch([], file=False, batch_id=batch_id))
    finally:
        await client.close()
    assert [s[:3] for s in answer.split("\r") if s] == ["BHS", "BTS"]
    assert segments(answer, "BHS")[0][11] == batch_id
    assert segments(answer, "BTS") == [["BTS", "0"]]


async def test_a_batch_with_an_unreadable_header_is_refused_and_kept(stack: RunningStack) -> None:
    marker = control()
    raw = b"BHS|\r" + a03(control_id=marker) + b"BTS|1\r"
    client = await MllpClient.connect(stack.mllp_port)
    try:
        answer = await client.exchange(raw)
    finally:
        await client.close()
    assert msa(answer)[1] == "AR"
    assert "BHS" in (segment(answer, "ERR") or "")
    assert [row["status"] for row in await rows_with_raw(stack, raw)] == ["rejected"]
    assert await status_of(stack.services.pool, marker) == []


async def test_post_adt_answers_a_batch_and_refuses_two_messages(stack: RunningStack) -> None:
    place = facility()
    ids = [control(), control()]
    messages = [a03(facility=place, visit=f"V-{c}", control_id=c) for c in ids]
    batch_id = control()
    response = await stack.post_adt(batch(messages, file=False, batch_id=batch_id))
    assert response.status_code == 200
    answer = response.content.decode()
    assert segments(answer, "BHS")[0][11] == batch_id
    assert [m[1:3] for m in segments(answer, "MSA")] == [["AA", c] for c in ids]
    first, second = control(), control()
    both = a03(facility=place, control_id=first) + a03(facility=place, control_id=second)
    refused = (await stack.post_adt(both)).content.decode()
    assert msa(refused)[1:3] == ["AR", first]
    assert await status_of(stack.services.pool, second) == []
