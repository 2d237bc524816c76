"""MLLP framing: split reads, pipelined frames, noise between frames, size limit."""

from __future__ import annotations

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


def test_oversized_frame_in_progress_is_reported_once_and_the_stream_resynchronises() -> None:
    reader = MllpFrameReader(max_bytes=10)
    out = reader.feed(b"\x0bMSH|" + b"x" * 20)
    assert len(out) == 1 and isinstance(out[0], FrameTooLarge)
    assert out[0].head == b"MSH|" + b"x" * 6
    assert reader.feed(b"y" * 50) == []  # still inside the oversized frame
    assert reader.feed(b"\x1c\x0d" + frame(b"OK")) == [b"OK"]


def test_complete_oversized_frame_among_good_ones() -> None:
    reader = MllpFrameReader(max_bytes=10)
    out = reader.feed(frame(b"A") + frame(b"z" * 11) + frame(b"B"))
    assert out[0] == b"A" and out[2] == b"B"
    assert isinstance(out[1], FrameTooLarge) and out[1].head == b"z" * 10
