"""Roster CSV validation: bad rows are rejected by line and reason, never by identifier."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ingest.roster_import import (
    Rejected,
    RosterFileError,
    parse_roster,
    read_roster,
    to_records,
)
from ingest.routing import AdtRouter
from schemas import keys
from schemas.adt import AdtEvent, MessageHeader
from schemas.protocol_library import load_library
from schemas.site import Attribution, SiteConfig

HEADER = "identifier,assigning_authority,practice,pcp_id,program\n"
PROTOCOLS = Path(__file__).resolve().parents[2] / "protocols"


def test_valid_rows_are_accepted_with_optional_columns_defaulted() -> None:
    parsed = parse_roster(HEADER + "100234,GENHOSP,Riverside,D77,TCM\n200345,GENHOSP,Riverside\n")
    assert parsed.rejected == ()
    assert [(r.identifier, r.practice, r.pcp_id, r.program) for r in parsed.accepted] == [
        ("100234", "Riverside", "D77", "TCM"),
        ("200345", "Riverside", "", ""),
    ]


def test_header_without_optional_columns_in_any_order_is_accepted() -> None:
    parsed = parse_roster("practice,identifier,assigning_authority\nRiverside,100234,GENHOSP\n")
    assert parsed.rejected == ()
    assert parsed.accepted[0].identifier == "100234"


def test_missing_identifier_is_rejected_with_its_line() -> None:
    parsed = parse_roster(HEADER + "100234,GENHOSP,Riverside\n,GENHOSP,Riverside\n")
    assert parsed.rejected == (Rejected(3, "missing identifier"),)
    assert len(parsed.accepted) == 1


def test_missing_required_values_at_the_end_of_a_short_row_are_named() -> None:
    parsed = parse_roster(HEADER + "100234\n")
    assert parsed.rejected == (Rejected(2, "missing assigning_authority; missing practice"),)


def test_duplicate_identifier_in_the_file_is_rejected_pointing_to_the_first() -> None:
    parsed = parse_roster(
        HEADER + "100234,GENHOSP,Riverside\n200345,GENHOSP,Riverside\n100234,genhosp,Hillside\n"
    )
    assert parsed.rejected == (Rejected(4, "duplicate of line 2"),)
    assert [r.practice for r in parsed.accepted] == ["Riverside", "Riverside"]


def test_same_identifier_of_another_authority_is_not_a_duplicate() -> None:
    parsed = parse_roster(HEADER + "100234,GENHOSP,Riverside\n100234,OTHERHOSP,Riverside\n")
    assert parsed.rejected == ()
    assert len(parsed.accepted) == 2


def test_row_with_an_extra_column_is_rejected() -> None:
    parsed = parse_roster(HEADER + "100234,GENHOSP,Riverside,D77,TCM,19480312\n")
    assert parsed.rejected == (Rejected(2, "extra column: 6 values, the header has 5"),)
    assert parsed.accepted == ()


def test_unknown_header_column_rejects_the_file_without_naming_the_value() -> None:
    parsed = parse_roster("100234,GENHOSP,Riverside\n200345,GENHOSP,Riverside\n")
    assert parsed.accepted == ()
    assert len(parsed.rejected) == 1
    assert parsed.rejected[0].line == 1
    assert "unknown column(s) at position 1, 2, 3" in parsed.rejected[0].reason
    assert "100234" not in parsed.rejected[0].reason


def test_header_missing_a_required_column_rejects_the_file() -> None:
    parsed = parse_roster("identifier,assigning_authority\n100234,GENHOSP\n")
    assert parsed.rejected == (Rejected(1, "header: missing column(s) practice; nothing imported"),)


def test_empty_file_is_rejected_as_a_whole() -> None:
    assert parse_roster("") == parse_roster("\n \n")
    parsed = parse_roster("")
    assert parsed.accepted == ()
    assert parsed.rejected == (Rejected(1, "empty file: no header row"),)


def test_header_only_file_has_nothing_to_import_and_nothing_to_reject() -> None:
    parsed = parse_roster(HEADER)
    assert parsed.accepted == () and parsed.rejected == ()


def test_blank_lines_are_skipped_and_line_numbers_stay_physical() -> None:
    parsed = parse_roster(HEADER + "\n100234,GENHOSP,Riverside\n\n,GENHOSP,Riverside\n")
    assert parsed.rejected == (Rejected(5, "missing identifier"),)


def test_too_long_value_is_rejected_without_quoting_it() -> None:
    identifier = "9" * 80
    parsed = parse_roster(HEADER + f"{identifier},GENHOSP,Riverside\n")
    assert len(parsed.rejected) == 1
    assert parsed.rejected[0].reason.startswith("identifier: ")
    assert identifier not in parsed.rejected[0].reason


def test_identifier_is_kept_out_of_the_row_repr() -> None:
    row = parse_roster(HEADER + "100234,GENHOSP,Riverside\n").accepted[0]
    assert "100234" not in repr(row)


def test_spreadsheet_bom_and_crlf_are_read(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_bytes(b"\xef\xbb\xbf" + HEADER.replace("\n", "\r\n").encode() + b"1,GH,P\r\n")
    parsed = parse_roster(read_roster(path))
    assert parsed.rejected == () and parsed.accepted[0].identifier == "1"


def test_unreadable_file_is_a_file_error(tmp_path: Path) -> None:
    with pytest.raises(RosterFileError):
        read_roster(tmp_path / "missing.csv")
    binary = tmp_path / "roster.xlsx"
    binary.write_bytes(b"PK\x03\x04\xff\xfe\x00")
    with pytest.raises(RosterFileError, match="not UTF-8"):
        read_roster(binary)


def test_records_carry_the_patient_key_routing_computes_never_the_identifier() -> None:
    rows = parse_roster(HEADER + " 100234 ,genhosp,Riverside,D77\n").accepted
    [record] = to_records(rows, "secret")
    assert record.patient_key == keys.patient_key("secret", "GENHOSP", "100234")
    assert "100234" not in repr(record)


def test_site_attribution_defaults_to_all() -> None:
    assert SiteConfig().attribution == Attribution.ALL
    assert load_library(PROTOCOLS).site.attribution == Attribution.ALL


def test_pcp_attribution_without_pcp_ids_is_refused() -> None:
    with pytest.raises(ValidationError, match="attributed_pcp_ids"):
        SiteConfig(attribution=Attribution.PCP)


def _router(site: SiteConfig) -> AdtRouter:
    library = load_library(PROTOCOLS)
    library = type(library)(site=site, versions=library.versions)
    return AdtRouter(None, None, library=library, key_secret="secret", task_queue="tq")


def _discharge(pcp_ids: tuple[str, ...]) -> AdtEvent:
    return AdtEvent(header=MessageHeader(), event_type="A03", facility="GH", pcp_ids=pcp_ids)


async def test_all_attribution_takes_every_discharge_without_a_roster() -> None:
    assert await _router(SiteConfig()).not_attributed(_discharge(())) is None


async def test_pcp_attribution_takes_a_discharge_naming_an_attributed_pcp() -> None:
    site = SiteConfig(attribution=Attribution.PCP, attributed_pcp_ids=("D77",))
    assert await _router(site).not_attributed(_discharge(("D12", "D77"))) is None
