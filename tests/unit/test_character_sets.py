"""Character sets and escapes: bytes are read in the MSH-18 character set (with the site's
overrides for senders that mislabel), hex escapes are bytes in that character set, and
formatting escapes become plain text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from ingest import er7, mapping
from schemas.adt import MessageHeader
from schemas.site import CharacterSets
from tests.helpers import a03

NY = ZoneInfo("America/New_York")


class _Recorder:
    """Stands in for ingest.er7's logger: what it was asked to log, whatever structlog's
    configuration (other tests configure it, and may cache or filter loggers)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.entries.append({"event": event, **fields, "log_level": "warning"})


@contextmanager
def er7_logs() -> Iterator[list[dict[str, Any]]]:
    recorder, real = _Recorder(), er7.log
    er7.log = recorder  # type: ignore[assignment]
    try:
        yield recorder.entries
    finally:
        er7.log = real


def with_msh18(raw: bytes, character_set: bytes) -> bytes:
    """The message with MSH-18 set (MSH-13..17 empty)."""
    msh, rest = raw.split(b"\r", 1)
    return msh + b"|" * 6 + character_set + b"\r" + rest


def kin_message(name: bytes, character_set: bytes = b"", *, separator: bytes = b"\r") -> bytes:
    """An A03 with one NK1 whose NK1-2 (XPN) is `name`, as bytes, and MSH-18 when given."""
    raw = a03() + b"NK1|1|" + name + b"|SPO^Spouse\r"
    if character_set:
        raw = with_msh18(raw, character_set)
    return raw.replace(b"\r", separator)


def kin_name(raw: bytes, character_sets: CharacterSets | None = None) -> str:
    event = mapping.to_event(er7.parse(raw, character_sets), NY)
    return event.next_of_kin[0].name


def visit_of(raw: bytes) -> str:
    return mapping.to_event(er7.parse(raw), NY).visit_number


CP1252 = CharacterSets(read_as={"8859/1": "cp1252"})


# -- codec_for: HL7 table 0211 -> Python codec ------------------------------------------


@pytest.mark.parametrize(
    ("character_set", "codec"),
    [
        ("ASCII", "ascii"),
        ("8859/1", "iso8859-1"),
        ("8859/2", "iso8859-2"),
        ("8859/15", "iso8859-15"),
        ("UNICODE UTF-8", "utf-8"),
        ("unicode  utf-8", "utf-8"),  # case and spacing are not the sender's point
        ("UNICODE", "utf-8"),
        ("GB 18030-2000", "gb18030"),
        ("BIG-5", "big5"),
        ("", "utf-8"),
        ("EBCDIC", "utf-8"),  # not in table 0211: UTF-8, as for an empty MSH-18
    ],
)
def test_codec_for_maps_table_0211(character_set: str, codec: str) -> None:
    assert er7.codec_for(character_set) == codec


def test_site_overrides_come_before_the_table_and_a_facility_before_the_site() -> None:
    sets = CharacterSets(
        read_as={"8859/1": "windows-1252", "": "cp1252"},
        by_facility={"NORTH": {"8859/1": "utf8"}},
    )
    assert er7.codec_for("8859/1", character_sets=sets) == "cp1252"
    assert er7.codec_for("", character_sets=sets) == "cp1252"
    assert er7.codec_for("8859/1", "NORTH", character_sets=sets) == "utf-8"
    assert er7.codec_for("ASCII", "NORTH", character_sets=sets) == "ascii"


def test_the_reply_is_written_in_the_codec_the_message_is_read_in() -> None:
    header = MessageHeader(character_set="8859/1", sending_facility="NORTH")
    assert er7.reply_codec(header, CharacterSets()) == "iso8859-1"
    assert er7.reply_codec(header, CP1252) == "cp1252"
    sets = CharacterSets(by_facility={"NORTH": {"8859/1": "utf-8"}})
    assert er7.reply_codec(header, sets) == "utf-8"
    assert er7.reply_codec(None, CharacterSets()) == "utf-8"


@pytest.mark.parametrize("codec", ["no-such-codec", "utf-16", "rot13"])
def test_a_site_setting_must_name_a_codec_that_reads_the_msh_as_ascii(codec: str) -> None:
    with pytest.raises(ValidationError, match="character_sets"):
        CharacterSets(read_as={"8859/1": codec})


def test_site_setting_keys_are_read_like_msh18_and_facility_codes_as_text() -> None:
    sets = CharacterSets.model_validate(
        {"read_as": {" unicode utf-8 ": "latin-1"}, "by_facility": {1234: {"": "cp1252"}}}
    )
    assert sets.read_as == {"UNICODE UTF-8": "iso8859-1"}
    assert er7.codec_for("", "1234", character_sets=sets) == "cp1252"


# -- decoding by MSH-18 ------------------------------------------------------------------


def test_ascii() -> None:
    assert kin_name(kin_message(b"DOE^JOHN", b"ASCII")) == "JOHN DOE"


def test_ascii_declared_with_a_windows_apostrophe_is_read_as_windows_1252() -> None:
    with er7_logs() as logs:
        assert kin_name(kin_message(b"O\x92BRIEN^JOHN", b"ASCII")) == "JOHN O\u2019BRIEN"
    assert {"event": "hl7.charset_fallback", "declared": "ascii", "used": "cp1252"} in [
        {k: v for k, v in entry.items() if k != "log_level"} for entry in logs
    ]


def test_8859_1() -> None:
    assert kin_name(kin_message(b"DOE^JOS\xc9", b"8859/1")) == "JOS\u00c9 DOE"


def test_8859_1_is_read_as_declared_even_where_the_bytes_would_pass_as_utf8() -> None:
    # C3 A9 is "Ã©" in 8859/1 (and "é" in UTF-8): the label decides, not a guess
    assert kin_name(kin_message(b"DOE^\xc3\xa9", b"8859/1")) == "\u00c3\u00a9 DOE"


def test_8859_2() -> None:
    assert kin_name(kin_message(b"\xa3UKASZ^\xb1", b"8859/2")) == "\u0105 \u0141UKASZ"


def test_unicode_utf8() -> None:
    assert kin_name(kin_message("DOE^JOSÉ".encode(), b"UNICODE UTF-8")) == "JOSÉ DOE"


def test_utf8_declared_but_invalid_falls_back_to_windows_1252_and_says_so() -> None:
    with er7_logs() as logs:
        name = kin_name(kin_message(b"O\x92BRIEN^JOS\xc9", b"UNICODE UTF-8"))
    assert name == "JOS\u00c9 O\u2019BRIEN"
    fallbacks = [entry for entry in logs if entry["event"] == "hl7.charset_fallback"]
    assert fallbacks == [
        {
            "event": "hl7.charset_fallback",
            "declared": "utf-8",
            "used": "cp1252",
            "log_level": "warning",
        }
    ]


def test_8859_1_with_c1_bytes_is_windows_1252_or_utf8() -> None:
    # 0x80-0x9F are no characters in ISO 8859-1: a Windows sender, or UTF-8 mislabelled
    assert kin_name(kin_message(b"O\x92BRIEN^JOHN", b"8859/1")) == "JOHN O\u2019BRIEN"
    utf8 = "O\u2019BRIEN^JOHN".encode()
    assert kin_name(kin_message(utf8, b"8859/1")) == "JOHN O\u2019BRIEN"


def test_site_override_reads_8859_1_as_windows_1252() -> None:
    raw = kin_message(b"O\x92BRIEN^JOHN", b"8859/1")
    assert kin_name(raw, CP1252) == "JOHN O\u2019BRIEN"
    assert "\x92" not in er7.decode(raw, CP1252)


def test_site_override_for_a_sender_that_labels_utf8_as_8859_1() -> None:
    raw = kin_message("DOE^José".encode(), b"8859/1")  # é is C3 A9: Latin-1 "Ã©" too
    assert kin_name(raw) == "Jos\u00c3\u00a9 DOE"  # as labelled
    sets = CharacterSets(read_as={"8859/1": "utf-8"})
    assert kin_name(raw, sets) == "José DOE"


def test_empty_msh18_is_utf8_then_windows_1252() -> None:
    assert kin_name(kin_message("DOE^JOSÉ".encode())) == "JOSÉ DOE"
    assert kin_name(kin_message(b"O\x92BRIEN^JOS\xc9")) == "JOS\u00c9 O\u2019BRIEN"


def test_a_byte_windows_1252_leaves_undefined_is_still_read() -> None:
    assert kin_name(kin_message(b"A\x81B^C")) == "C A\x81B"  # Latin-1, the last resort


def test_the_first_msh18_repetition_is_the_default_character_set() -> None:
    raw = kin_message(b"DOE^\xc3\xa9", b"8859/1~UNICODE UTF-8")
    assert kin_name(raw) == "\u00c3\u00a9 DOE"


@pytest.mark.parametrize("separator", [b"\n", b"\r\n"])
def test_msh18_is_found_whatever_the_segment_ends(separator: bytes) -> None:
    raw = kin_message(b"DOE^\xc3\xa9", b"8859/1", separator=separator)
    assert kin_name(raw) == "\u00c3\u00a9 DOE"


def test_a_utf8_bom_is_skipped_and_means_utf8() -> None:
    raw = b"\xef\xbb\xbf" + kin_message("DOE^JOSÉ".encode(), b"8859/1")
    assert kin_name(raw) == "JOSÉ DOE"
    assert kin_name(b"\xef\xbb\xbf" + kin_message(b"DOE^JOHN", b"ASCII")) == "JOHN DOE"


def test_msh18_is_read_with_non_default_delimiters() -> None:
    raw = kin_message(b"DOE^\xc3\xa9", b"8859/1").replace(b"|", b"#").replace(b"^", b"$")
    assert er7.decode(raw).split("\r")[-2] == "NK1#1#DOE$\u00c3\u00a9#SPO$Spouse"


# -- hex escapes: bytes in the message's character set -----------------------------------


def test_hex_escape_in_a_utf8_message() -> None:
    assert kin_name(kin_message(b"DOE^JOS\\XC389\\", b"UNICODE UTF-8")) == "JOSÉ DOE"
    assert kin_name(kin_message(b"DOE^JOS\\XC3\\\\X89\\", b"UNICODE UTF-8")) == "JOSÉ DOE"


def test_hex_escape_in_an_empty_msh18_message_is_utf8() -> None:
    assert kin_name(kin_message(b"DOE^JOS\\XC3A9\\")) == "JOS\u00e9 DOE"


def test_hex_escape_in_an_8859_1_message() -> None:
    assert kin_name(kin_message(b"DOE^JOS\\XC9\\", b"8859/1")) == "JOSÉ DOE"
    assert kin_name(kin_message(b"DOE^\\Xc3a9\\", b"8859/1")) == "\u00c3\u00a9 DOE"


def test_hex_escape_in_a_windows_1252_message() -> None:
    assert kin_name(kin_message(b"O\\X92\\BRIEN^JOHN", b"8859/1"), CP1252) == "JOHN O\u2019BRIEN"


def test_hex_escape_not_valid_in_utf8_is_read_as_windows_1252() -> None:
    assert kin_name(kin_message(b"DOE^JOS\\XC9\\", b"UNICODE UTF-8")) == "JOSÉ DOE"


def test_hex_escaped_delimiters_and_line_breaks_stay_in_their_value() -> None:
    assert visit_of(a03(visit="V\\X7C5E\\1")) == "V|^1"
    assert kin_name(kin_message(b"DOE^ANN\\X0D0A\\MARIE")) == "ANN  MARIE DOE"


def test_broken_hex_escapes_are_dropped() -> None:
    assert kin_name(kin_message(b"DOE^ANN\\XC\\\\XZZ\\")) == "ANN DOE"


# -- formatting escapes become text ------------------------------------------------------


def test_formatting_escapes_in_a_name_become_plain_text() -> None:
    name = b"\\H\\DOE\\N\\\\.br\\^ANN\\.br\\MARIE\\.sp2\\\\.in+4\\\\.ti-2\\LOU\\.ce\\\\.fi\\\\.nf\\"
    assert kin_name(kin_message(name)) == "ANN MARIE LOU DOE"


def test_a_line_break_inside_a_name_is_a_space_not_a_cr() -> None:
    name = kin_name(kin_message(b"DOE^ANN\\.br\\MARIE"))
    assert name == "ANN MARIE DOE"
    assert "\r" not in name


def test_local_and_character_set_switch_escapes_vanish_and_are_logged_without_content() -> None:
    with er7_logs() as logs:
        name = kin_name(kin_message(b"DOE^\\Z1A\\ANN\\C2842\\\\M2442\\\\Q\\"))
    assert name == "ANN DOE"
    dropped = [entry for entry in logs if entry["event"] == "hl7.escapes_dropped"]
    assert dropped == [
        {
            "event": "hl7.escapes_dropped",
            "kinds": ["character set switch", "local (Z)", "unknown"],
            "log_level": "warning",
        }
    ]
    assert "ANN" not in repr(logs) and "DOE" not in repr(logs)


# -- what must keep working --------------------------------------------------------------


def test_delimiter_escapes_still_work() -> None:
    assert visit_of(a03(visit="V\\F\\1\\S\\2\\T\\3\\R\\4\\E\\5")) == "V|1^2&3~4\\5"


def test_the_truncation_character_and_its_escape() -> None:
    raw = a03(visit="V12#").replace(b"MSH|^~\\&|", b"MSH|^~\\&#|").replace(b"|2.5.1", b"|2.7")
    assert visit_of(raw) == "V12#"
    assert visit_of(raw.replace(b"V12#", b"V\\P\\1")) == "V#1"


def test_a_lone_escape_character_is_kept_as_sent() -> None:
    assert visit_of(a03(visit="V\\1")) == "V\\1"


def test_msh2_itself_is_not_an_escape() -> None:
    message = er7.parse(kin_message(b"DOE^\\XC9\\", b"8859/1"))
    assert er7.encoding_characters(message).escape == "\\"
    assert mapping.header(message).character_set == "8859/1"
