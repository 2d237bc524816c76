"""Replaying recorded ER7 feeds (simulate --feed): files split however interface engines
write them, every event time shifted by one delta (relative timing kept across a DST
change; precision, offsets, `""` and birth dates as they were), refusals that name the file
and message; and the generated feed's readmissions and A08 updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ingest.er7_files import messages_in
from tests.helpers import a03, with_event, with_field
from workers.simulation import counts
from workers.simulation.feed import FeedSpec, generate
from workers.simulation.replay import ReplayError, read, replay, shifted
from workers.simulation.timeshift import Shift, shift_message, shift_value

ZONE = ZoneInfo("America/New_York")
START = datetime(2031, 6, 2, tzinfo=ZONE)  # a clock the test owns: the simulated first day
SENT = datetime(2026, 3, 7, 17, 0, tzinfo=UTC)  # the recording's own time


def recorded(msh7: str, *, evn2: str | None = None, visit: str = "RV1", **fields: str) -> bytes:
    """An A03 sent at `msh7` (ER7 text, as written); `fields` as PV1_45="..." set as is."""
    raw = with_field(a03(now=SENT, visit=visit, facility="GENHOSP"), "MSH", 7, msh7)
    raw = with_field(raw, "EVN", 2, msh7 if evn2 is None else evn2)
    for name, value in fields.items():
        segment, number = name.split("_")
        raw = with_field(raw, segment, int(number), value)
    return raw


def field(raw: bytes, segment: str, number: int) -> str:
    line = next(s for s in raw.decode().split("\r") if s.startswith(segment))
    return line.split("|")[number - 1 if segment == "MSH" else number]


def feed_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_file_splits_at_mllp_frames_blank_lines_and_each_msh_line_with_cr_segment_ends() -> None:
    first = recorded("20260307120000", visit="RV1").replace(b"\r", b"\r\n")
    second = recorded("20260307130000", visit="RV2").replace(b"\r", b"\n")
    third = recorded("20260307140000", visit="RV3")
    data = b"\xef\xbb\xbf" + first + b"\r\n\r\n" + second + b"\x0b" + third + b"\x1c\r"
    messages = messages_in(data)
    assert [field(m, "PV1", 19).split("^")[0] for m in messages] == ["RV1", "RV2", "RV3"]
    assert all(m.startswith(b"MSH|") and b"\n" not in m and m.endswith(b"\r") for m in messages)
    assert messages[2] == third  # a CR message comes back byte for byte


def test_a_batch_file_gives_each_of_its_messages() -> None:
    one, two = recorded("20260307120000", visit="RV1"), recorded("20260307130000", visit="RV2")
    data = b"FHS|^~\\&|EPIC\rBHS|^~\\&|EPIC\r" + one + two + b"BTS|2\rFTS|1\r"
    assert messages_in(data) == [one, two]


def test_the_first_message_lands_on_the_start_day_at_its_local_time_and_dst_keeps_the_gap(
    tmp_path: Path,
) -> None:
    # Recorded across the US spring-forward (2026-03-08): noon EST to noon EDT is 47 hours.
    # Replayed in June (no change): the second message comes 47 hours after the first, at
    # 11:00 local, and its times are written there, without an offset as recorded.
    path = feed_file(
        tmp_path,
        "feed.hl7",
        recorded("20260307120000", visit="RV1")
        + recorded("20260309120000", visit="RV2", PV1_45="20260309114500"),
    )
    feed = replay(path, START, ZONE)
    assert feed[0].at == datetime(2031, 6, 2, 12, 0, tzinfo=ZONE)
    assert feed[1].at - feed[0].at == timedelta(hours=47)
    assert field(feed[1].raw, "MSH", 7) == "20310604110000"
    assert field(feed[1].raw, "EVN", 2) == "20310604110000"
    assert field(feed[1].raw, "PV1", 45) == "20310604104500"
    assert [m.trigger for m in feed] == ["A03", "A03"] and feed[1].visit == "RV2"


def test_offsets_precision_nulls_and_birth_dates_are_kept_as_recorded() -> None:
    raw = recorded(
        "20260307120000-0500",
        PV1_44="202603051030",  # to the minute
        PV1_45='""',  # the explicit null
        PID_7="19480312",  # a birth date: never an event time
        PID_29="20260307115500.25-0500",  # a death time with a fraction
        EVN_3="20260305",  # a date
    )
    shift = Shift(delta=timedelta(days=10, hours=1), days=10, zone=ZONE)
    moved = shift_message(raw, shift)
    assert field(moved, "MSH", 7) == "20260317130000-0500"
    assert field(moved, "PV1", 44) == "202603151230"  # 10:30 EST + 10 d 1 h: 12:30 EDT
    assert field(moved, "PV1", 45) == '""'
    assert field(moved, "PID", 7) == "19480312"
    assert field(moved, "PID", 29) == "20260317125500.25-0500"
    assert field(moved, "EVN", 3) == "20260315"  # whole days: a date stays a date
    diagnosis = b"DG1|1||I50.9^Heart failure^I10||20260301"  # DG1-5: not an event time
    assert diagnosis in shift_message(raw + diagnosis + b"\r", shift).split(b"\r")


def test_a_value_that_is_no_timestamp_is_left_for_the_intake_to_refuse() -> None:
    shift = Shift(delta=timedelta(days=1), days=1, zone=ZONE)
    assert [shift_value(v, shift) for v in ("", '""', "soon", "20261399")] == [
        "",
        '""',
        "soon",
        "20261399",
    ]


def test_without_msh7_evn2_places_the_message_and_without_both_it_follows_the_one_before(
    tmp_path: Path,
) -> None:
    path = feed_file(
        tmp_path,
        "feed.hl7",
        recorded("20260307120000", visit="RV1")
        + recorded("", evn2="20260307150000", visit="RV2")
        + recorded("", evn2="", visit="RV3"),
    )
    assert [r.at.astimezone(ZONE).hour for r in read(path, ZONE)] == [12, 15, 15]
    feed = replay(path, START, ZONE)
    assert [m.visit for m in feed] == ["RV1", "RV2", "RV3"]  # equal times: file order


def test_a_folder_is_read_in_file_name_order_and_sorted_by_time(tmp_path: Path) -> None:
    feed_file(tmp_path, "b.hl7", recorded("20260307090000", visit="RV1"))
    feed_file(tmp_path, "a.hl7", recorded("20260307100000", visit="RV2"))
    feed_file(tmp_path, ".hidden", b"not a feed")
    found = read(tmp_path, ZONE)
    assert [(r.source, r.number) for r in found] == [("a.hl7", 1), ("b.hl7", 1)]
    assert [m.visit for m in shifted(found, START, ZONE)] == ["RV1", "RV2"]


def test_a_first_message_without_any_time_is_refused_naming_the_file_and_message_not_the_patient(
    tmp_path: Path,
) -> None:
    path = feed_file(tmp_path, "day.hl7", recorded("", evn2="", visit="RV1"))
    with pytest.raises(ReplayError) as refused:
        read(path, ZONE)
    text = str(refused.value)
    assert text.startswith("day.hl7: message 1 has no usable time")
    assert "RV1" not in text and "100234" not in text


def test_a_missing_path_an_empty_folder_and_an_empty_file_are_refused_in_a_sentence(
    tmp_path: Path,
) -> None:
    with pytest.raises(ReplayError, match="there is no file or folder"):
        read(tmp_path / "absent", ZONE)
    with pytest.raises(ReplayError, match="holds no HL7 message"):
        read(tmp_path, ZONE)
    with pytest.raises(ReplayError, match="holds no HL7 message"):
        read(feed_file(tmp_path, "empty.hl7", b"\r\n\r\n"), ZONE)


def test_text_that_is_no_message_is_replayed_as_is_after_the_message_before_it(
    tmp_path: Path,
) -> None:
    path = feed_file(tmp_path, "feed.hl7", recorded("20260307120000") + b"\x0bgarbage line\r\x1c\r")
    feed = replay(path, START, ZONE)
    assert [m.raw for m in feed][1] == b"garbage line\r" and feed[1].trigger == ""
    assert feed[1].at == feed[0].at


def test_a_replayed_feed_has_no_expected_counts_and_a_generated_one_counts_its_triggers(
    tmp_path: Path,
) -> None:
    path = feed_file(tmp_path, "feed.hl7", recorded("20260307120000"))
    assert counts.expected(replay(path, START, ZONE)) is None
    spec = FeedSpec(days=3, discharges_per_day=4, a13_share=0.3, readmission_share=0.5, seed=2)
    feed = generate(spec, START, ZONE)
    want = counts.expected(feed)
    assert want is not None
    triggers = [m.trigger for m in feed]
    assert (want.transitions, want.cancelled, want.readmissions) == (
        triggers.count("A03"),
        triggers.count("A13"),
        triggers.count("A01"),
    )


def test_at_shares_of_one_every_discharge_is_updated_hours_later_and_readmitted_in_25_days() -> (
    None
):
    spec = FeedSpec(
        days=2,
        discharges_per_day=3,
        weekday_pattern=(1,) * 7,
        a13_share=0.0,
        readmission_share=1.0,
        a08_share=1.0,
    )
    feed = generate(spec, START, ZONE)
    first = [m for m in feed if m.trigger == "A03" and m.visit.startswith("SIMV")]
    assert len(first) == 6
    for discharge in first:
        mrn = field(discharge.raw, "PID", 3).split("^")[0]
        update = next(m for m in feed if m.trigger == "A08" and m.visit == discharge.visit)
        assert timedelta(hours=1) <= update.at - discharge.at < timedelta(hours=8)
        assert field(update.raw, "PID", 13) != field(discharge.raw, "PID", 13)
        again = [m for m in feed if field(m.raw, "PID", 3).split("^")[0] == mrn]
        admission = next(m for m in again if m.trigger == "A01")
        assert admission.visit != discharge.visit and field(admission.raw, "PV1", 2) == "I"
        assert timedelta(hours=18) <= admission.at - discharge.at <= timedelta(days=25, hours=7)
        second = next(m for m in again if m.trigger == "A03" and m.visit == admission.visit)
        assert timedelta(days=2) <= second.at - admission.at < timedelta(days=9)
    assert [m.at for m in feed] == sorted(m.at for m in feed)


def test_readmissions_and_updates_leave_the_rest_of_the_feed_as_it_was_and_repeat_by_seed() -> None:
    base = FeedSpec(days=5, discharges_per_day=6, a13_share=0.1, seed=4)
    more = FeedSpec(
        days=5, discharges_per_day=6, a13_share=0.1, seed=4, readmission_share=0.3, a08_share=0.3
    )
    plain = generate(base, START, ZONE)
    extra = generate(more, START, ZONE)
    assert [m.raw for m in extra if m.trigger in ("A03", "A13") and m.visit.startswith("SIMV")] == [
        m.raw for m in plain
    ]
    assert {"A01", "A08"} <= {m.trigger for m in extra}
    assert [m.raw for m in generate(more, START, ZONE)] == [m.raw for m in extra]
    # A cancelled discharge is neither updated nor readmitted.
    cancelled = {m.visit for m in extra if m.trigger == "A13"}
    assert not any(m.trigger == "A08" and m.visit in cancelled for m in extra)


def test_shares_outside_0_and_1_are_refused() -> None:
    with pytest.raises(ValueError, match="readmission share must be between 0 and 1"):
        FeedSpec(days=1, discharges_per_day=1, readmission_share=1.5)
    with pytest.raises(ValueError, match="A08 share must be between 0 and 1"):
        FeedSpec(days=1, discharges_per_day=1, a08_share=-0.1)


def test_an_a13_recorded_as_such_keeps_its_trigger(tmp_path: Path) -> None:
    path = feed_file(
        tmp_path, "cancel.hl7", with_event(recorded("20260307120000", PV1_45='""'), "A13")
    )
    (message,) = replay(path, START, ZONE)
    assert message.trigger == "A13" and field(message.raw, "PV1", 45) == '""'


def test_the_example_folder_holds_a_crlf_file_an_mllp_framed_one_and_eight_messages() -> None:
    folder = Path(__file__).resolve().parents[2] / "docs" / "simulation" / "feed-example"
    assert b"\r\n" in (folder / "2025-04-07.hl7").read_bytes()
    assert (folder / "2025-04-08.mllp").read_bytes().startswith(b"\x0bMSH|")
    found = read(folder, ZONE)
    assert [r.source for r in found].count("2025-04-07.hl7") == 3
    assert len(found) == 8  # .gitattributes is hidden: not a feed file
