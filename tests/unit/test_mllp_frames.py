"""MLLP framing: split reads, pipelined frames, noise between frames, size limit."""

from __future__ import annotations

import pytest

from workers.listener import FrameTooLarge, MllpFrameReader, frame


def test_frame_split_across_reads_is_reassembled() -> None:
    reader = MllpFrameReader(max_bytes=1000)
    data = frame(b"MSH|one\r")
    assert reader.feed(data[:5]) == []
    assert reader.feed(data[5:]) == [b"MSH|one\r"]


def test_pipelined_frames_in_one_read_come_out_in_order() -> None:
    reader = MllpFrameReader(max_bytes=1000)
    assert reader.feed(frame(b"A") + frame(b"B") + frame(b"C")[:2]) == [b"A", b"B"]
    assert reader.feed(frame(b"C")[2:]) == [b"C"]


def test_noise_before_start_block_is_dropped() -> None:
    reader = MllpFrameReader(max_bytes=1000)
    assert reader.feed(b"\r\n" + frame(b"A")) == [b"A"]


def test_oversized_frame_raises() -> None:
    reader = MllpFrameReader(max_bytes=10)
    with pytest.raises(FrameTooLarge):
        reader.feed(b"\x0b" + b"x" * 20)
