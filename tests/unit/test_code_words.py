"""Codes as words: PID-15 languages (ISO 639 codes as feeds send them), NK1-3 relationships
(HL7 table 0063) and DG1-3 diagnoses (ICD-10-CM titles), each with its fallback."""

from __future__ import annotations

import pytest

from schemas.diagnoses import diagnosis_title, icd10_title
from schemas.languages import language_name, language_tag, plan_language
from schemas.relationships import relationship_name


@pytest.mark.parametrize("sent", ["es", "spa", "SPA", "SPA^Spanish", "SPA^Spanish^ISO6392"])
def test_spanish_reads_as_spanish_in_every_form_a_feed_sends(sent: str) -> None:
    assert language_tag(sent) == "es"
    assert language_name(sent) == "Spanish"
    assert language_name(sent, "es") == "español"


def test_a_language_sent_only_as_its_name_is_recognised() -> None:
    assert language_tag("^Spanish") == "es"
    assert language_tag("Spanish") == "es"
    assert language_tag("Español") == "es"


@pytest.mark.parametrize(
    ("sent", "name"),
    [("chi", "Chinese"), ("ger", "German"), ("vie", "Vietnamese"), ("hat", "Haitian Creole")],
)
def test_three_letter_codes_read_as_their_language(sent: str, name: str) -> None:
    assert language_name(sent) == name


def test_a_value_that_names_no_language_is_shown_as_sent() -> None:
    assert language_tag("X1") is None
    assert language_name("X1^Local code") == "X1"
    assert language_name("") == ""


def test_the_plan_is_spanish_for_spanish_speakers_and_english_otherwise() -> None:
    assert plan_language("SPA") == "es"
    assert plan_language("vie") == "en"  # no Vietnamese plan yet: English
    assert plan_language("") == "en"


@pytest.mark.parametrize(
    ("code", "english", "spanish"),
    [
        ("SPO", "spouse", "cónyuge"),
        ("CHD", "child", "hijo o hija"),
        ("EMC", "emergency contact", "contacto de emergencia"),
        ("spo", "spouse", "cónyuge"),
        ("SPO^Spouse", "spouse", "cónyuge"),
    ],
)
def test_nk1_relationship_codes_read_as_words(code: str, english: str, spanish: str) -> None:
    assert relationship_name(code) == english
    assert relationship_name(code, "es") == spanish


def test_a_relationship_outside_the_table_is_shown_as_sent() -> None:
    assert relationship_name("ZZZ") == "ZZZ"
    assert relationship_name("^Neighbour") == "Neighbour"
    assert relationship_name("") == ""


@pytest.mark.parametrize("code", ["I50.9", "I509", "i50.9 "])
def test_an_icd10_code_reads_as_its_title_with_or_without_the_dot(code: str) -> None:
    assert icd10_title(code) == "Heart failure, unspecified"


def test_a_category_code_has_its_title_too() -> None:
    assert icd10_title("E11") == "Type 2 diabetes mellitus"


def test_a_code_not_in_icd10_cm_falls_back_to_the_text_sent_then_to_the_code() -> None:
    assert icd10_title("Z99.99") is None
    assert diagnosis_title("Z99.99", "Local: dependence on device") == (
        "Local: dependence on device"
    )
    assert diagnosis_title("LOCAL42") == "LOCAL42"
    assert diagnosis_title("J44.1", "COPD exac") == (
        "Chronic obstructive pulmonary disease with (acute) exacerbation"
    )
