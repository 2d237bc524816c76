"""Protocol files validate at load with clear errors; the site table picks one per discharge."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ingest import er7, mapping
from schemas.protocol import RiskTier
from schemas.protocol_library import ProtocolError, load_library
from tests.helpers import a03

SHIPPED = Path(__file__).resolve().parents[2] / "protocols"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "protocols"
    shutil.copytree(SHIPPED, target)
    return target


def edit(path: Path, change: dict[str, object]) -> None:
    data = yaml.safe_load(path.read_text())
    data.update(change)
    path.write_text(yaml.safe_dump(data))


def test_shipped_protocols_load() -> None:
    library = load_library(SHIPPED)
    assert [p.id for p in library.all_latest()] == [
        "discharge-home",
        "discharge-home-health",
        "expired",
        "facility-handoff",
        "left-ama",
    ]
    home = library.latest("discharge-home")
    assert home.tcm and home.period_days == 30
    contact = home.step("interactive_contact")
    assert contact.min_attempts == 2
    assert [level.role for level in contact.escalation] == [
        "care_manager",
        "supervisor",
        "medical_director",
    ]
    assert home.step("high_risk_check_in").tiers == (RiskTier.HIGH,)
    assert not library.latest("facility-handoff").tcm
    assert library.latest("expired").closes_with == "deceased"


def test_unknown_prerequisite_is_named(folder: Path) -> None:
    path = folder / "facility-handoff.yaml"
    data = yaml.safe_load(path.read_text())
    data["steps"][0]["prerequisites"] = ["fax_machine"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProtocolError, match=r"facility-handoff.yaml: .*unknown step 'fax_machine'"):
        load_library(folder)


def test_cycle_is_reported(folder: Path) -> None:
    path = folder / "left-ama.yaml"
    data = yaml.safe_load(path.read_text())
    data["steps"][0]["prerequisites"] = ["follow_up_visit"]
    data["steps"][2]["prerequisites"] = ["interactive_contact"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProtocolError, match="cycle: follow_up_visit -> interactive_contact"):
        load_library(folder)


def test_negative_offset_is_rejected(folder: Path) -> None:
    path = folder / "facility-handoff.yaml"
    data = yaml.safe_load(path.read_text())
    data["steps"][0]["due"]["amount"] = -4
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProtocolError, match=r"steps.0.due.amount: Input should be greater"):
        load_library(folder)


def test_unknown_field_and_bad_yaml_are_rejected(folder: Path) -> None:
    edit(folder / "expired.yaml", {"colour": "red"})
    with pytest.raises(ProtocolError, match=r"expired.yaml: colour: Extra inputs"):
        load_library(folder)
    (folder / "expired.yaml").write_text("id: [unclosed")
    with pytest.raises(ProtocolError, match=r"expired\.yaml: not valid YAML"):
        load_library(folder)


def test_selection_naming_an_unknown_protocol_is_rejected(folder: Path) -> None:
    (folder / "left-ama.yaml").unlink()
    with pytest.raises(ProtocolError, match="unknown protocol 'left-ama'"):
        load_library(folder)


def test_two_versions_new_transitions_get_the_latest(folder: Path) -> None:
    data = yaml.safe_load((folder / "discharge-home.yaml").read_text())
    data["version"] = 2
    (folder / "discharge-home.v2.yaml").write_text(yaml.safe_dump(data))
    library = load_library(folder)
    assert library.latest("discharge-home").version == 2
    assert sorted(library.versions["discharge-home"]) == [1, 2]


@pytest.mark.parametrize(
    ("disposition", "patient_class", "expected"),
    [
        ("01", "I", "discharge-home"),
        ("01", "O", "discharge-home"),
        ("06", "I", "discharge-home-health"),
        ("07", "I", "left-ama"),
        ("03", "I", "facility-handoff"),
        ("20", "I", "expired"),
        ("41", "O", "expired"),
        ("01", "E", None),  # an ED visit is not a TCM discharge
        ("09", "I", None),  # admitted as an inpatient here: not a discharge to care for
        ("", "I", None),
    ],
)
def test_site_table_selects_by_disposition_and_class(
    disposition: str, patient_class: str, expected: str | None
) -> None:
    raw = a03(disposition=disposition).replace(b"PV1|1|I|", f"PV1|1|{patient_class}|".encode())
    event = mapping.to_event(er7.parse(raw), load_library(SHIPPED).site.calendar_zone())
    selection = load_library(SHIPPED).select(event)
    assert (selection.protocol.id if selection.protocol else None) == expected
    if expected is None:
        assert selection.reason.startswith("no protocol applies")


def test_death_indicator_selects_expired_whatever_the_disposition() -> None:
    raw = a03(disposition="01").replace(b"|F\r", b"|F" + b"|" * 22 + b"Y\r")
    library = load_library(SHIPPED)
    event = mapping.to_event(er7.parse(raw), library.site.calendar_zone())
    assert library.select(event).protocol == library.latest("expired")


def test_site_rule_outside_a_protocols_scope_is_rejected(folder: Path) -> None:
    site = yaml.safe_load((folder / "site.yaml").read_text())
    site["selection"].append({"protocol": "discharge-home", "dispositions": ["03"]})
    (folder / "site.yaml").write_text(yaml.safe_dump(site))
    with pytest.raises(
        ProtocolError, match=r"selection rule 7 \(discharge-home\): dispositions 03"
    ):
        load_library(folder)
