"""MllpFrameReader resynchronises on every block byte (issue 15, item 2): a start block in an
open frame restarts it (the aborted bytes come out as an AbortedFrame), an end block ends
the frame with or without its CR, and the end block may be split across reads in every
state. Also what one frame holds (ingest.batch.read): one message, two, or a batch."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest import batch
from ingest.errors import HL7Error
from workers.listener import AbortedFrame, FrameTooLarge, MllpFrameReader, frame

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"


def feed_all(reader: MllpFrameReader, *chunks: bytes) -> list[object]:
    return [item for chunk in chunks for item in reader.feed(chunk)]


def test_a_start_block_inside_a_frame_aborts_it_and_starts_the_next() -> None:
    reader = MllpFrameReader(max_bytes=1000)
    assert reader.feed(SB + b"MSH|cut" + SB + b"MSH|full" + EB + CR) == [
        AbortedFrame(b"MSH|cut"),
        b"MSH|full",
    ]


def test_the_aborting_start_block_may_come_in_a_later_read() -> None:
    reader = MllpFrameReader(max_bytes=1000)
    assert reader.feed(SB + b"MSH|cut") == []
    assert reader.feed(SB + b"MSH|full" + EB) == [AbortedFrame(b"MSH|cut")]
    assert reader.feed(CR) == [b"MSH|full"]


def test_a_doubled_start_block_aborts_nothing() -> None:
    reader = MllpFrameReader(max_bytes=1000)
    assert reader.feed(SB + SB + b"A" + EB + CR) == [b"A"]


def test_an_end_block_split_from_its_cr_ends_the_frame_in_the_next_read() -> None:
    reader = MllpFrameReader(max_bytes=1000)
    assert reader.feed(SB + b"A" + EB) == []  # undecided until the next byte
    assert reader.feed(CR + frame(b"B")) == [b"A", b"B"]


@pytest.mark.parametrize("after", [SB + b"B" + EB + CR, b"\n" + SB + b"B" + EB + CR])
def test_an_end_block_without_cr_ends_the_frame(after: bytes) -> None:
    reader = MllpFrameReader(max_bytes=1000)
    assert reader.feed(SB + b"A" + EB + after) == [b"A", b"B"]


def test_an_end_block_without_cr_decided_in_the_next_read() -> None:
    reader = MllpFrameReader(max_bytes=1000)
    assert reader.feed(SB + b"A" + EB) == []
    assert reader.feed(SB + b"B" + EB + CR) == [b"A", b"B"]


def test_a_trailing_end_block_is_never_yielded_without_a_next_byte() -> None:
    reader = MllpFrameReader(max_bytes=1000)
    assert reader.feed(SB + b"A" + EB) == []  # a close now: never acknowledged, resent


def test_an_end_block_outside_a_frame_is_noise() -> None:
    reader = MllpFrameReader(max_bytes=1000)
    assert reader.feed(EB + CR + EB + b"x" + frame(b"A")) == [b"A"]


def test_a_frame_of_exactly_the_limit_is_accepted() -> None:
    reader = MllpFrameReader(max_bytes=10)
    assert reader.feed(frame(b"x" * 10)) == [b"x" * 10]


def test_an_oversized_frame_whose_end_block_is_split_resynchronises() -> None:
    reader = MllpFrameReader(max_bytes=10)
    out = reader.feed(SB + b"MSH|" + b"x" * 20)
    assert len(out) == 1 and isinstance(out[0], FrameTooLarge)
    assert reader.feed(b"y" * 50 + EB) == []
    assert reader.feed(CR + frame(b"OK")) == [b"OK"]


def test_an_oversized_frame_ended_without_cr_resynchronises() -> None:
    reader = MllpFrameReader(max_bytes=10)
    assert isinstance(reader.feed(SB + b"x" * 20)[0], FrameTooLarge)
    assert reader.feed(EB) == []
    assert reader.feed(SB + b"OK" + EB + CR) == [b"OK"]


def test_an_oversized_frame_aborted_by_a_start_block_is_not_reported_twice() -> None:
    reader = MllpFrameReader(max_bytes=10)
    assert isinstance(reader.feed(SB + b"x" * 20)[0], FrameTooLarge)
    assert reader.feed(b"x" * 5 + SB + b"OK" + EB + CR) == [b"OK"]


STREAM = (
    b"\r\nnoise"
    + frame(b"MSH|1")
    + SB
    + b"MSH|cut"
    + frame(b"MSH|2")
    + SB
    + b"MSH|3"
    + EB
    + SB
    + b"MSH|4"
    + EB
    + b"\n"
    + frame(b"z" * 30)
    + frame(b"MSH|5")
)


def summary(items: list[object]) -> list[object]:
    return [("too large", i.head) if isinstance(i, FrameTooLarge) else i for i in items]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_of_the_stream_reads_the_same(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    items = feed_all(MllpFrameReader(max_bytes=20), *chunks)
    assert summary(items) == [
        b"MSH|1",
        AbortedFrame(b"MSH|cut"),
        b"MSH|2",
        b"MSH|3",
        b"MSH|4",
        ("too large", b"z" * 20),
        b"MSH|5",
    ]


# What one frame holds (ingest.batch.read).

MSH_1 = b"MSH|^~\\&|EPIC|GENHOSP|CB|CB|20261201||ADT^A03|C1|P|2.5.1\rPID|1\r"
MSH_2 = b"MSH|^~\\&|EPIC|GENHOSP|CB|CB|20261201||ADT^A03|C2|P|2.5.1\rPID|2\r"


def test_one_message_is_handed_over_as_is() -> None:
    assert batch.read(MSH_1) is None
    assert batch.read(b"MSH|^~\\&|x\rNTE|1|MSHx\r") is None  # MSH only at a segment start


@pytest.mark.parametrize("separator", [b"\r", b"\n", b"\r\n"])
def test_two_messages_without_a_batch_are_refused(separator: bytes) -> None:
    with pytest.raises(HL7Error) as refused:
        batch.read((MSH_1 + MSH_2).replace(b"\r", separator))
    assert (refused.value.segment, refused.value.sequence) == ("MSH", 2)
    assert refused.value.condition[0] == "100"


def test_a_batch_is_split_into_its_messages_as_sent() -> None:
    raw = b"FHS|^~\\&|A|B\rBHS|^~\\&|A|B|||||||B1\r" + MSH_1 + MSH_2 + b"BTS|2\rFTS|1\r"
    read = batch.read(raw)
    assert read is not None and read.messages == (MSH_1, MSH_2)
    assert read.batch_header is not None and read.batch_header.field(11) == "B1"


@pytest.mark.parametrize(
    "raw",
    [
        b"BHS|\r" + MSH_1,  # no encoding characters
        b"BHS\r" + MSH_1,  # no field separator
        b"BHS|^~\\&\rPID|1\r" + MSH_1,  # a segment before the first MSH
        b"BHS|^~\\&\r" + MSH_1 + b"BTS|1\rBHS|^~\\&\r" + MSH_2 + b"BTS|1\r",  # two batches
        b"BHS|^~\\&\r" + MSH_1 + b"BTS|1\r" + MSH_2,  # a message after the trailer
    ],
)
def test_a_batch_that_cannot_be_read_is_refused(raw: bytes) -> None:
    with pytest.raises(HL7Error):
        batch.read(raw)
