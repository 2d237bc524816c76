"""Diagnoses as words: an ICD-10-CM code's title from CMS's code files, as the
simple-icd-10-cm package ships them (the April 2026 tabular list, public domain). A code the
list does not have (a WHO ICD-10 code, a typo, a local code) falls back to the text the
feed sent with it (DG1-3.2), else to the code itself.

The package reads its 10 MB table on first use (about 1.5 s): it is imported then, not at
start-up, and a server calls `diagnosis_titles` in a thread."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from functools import cache
from typing import Any

ICD10_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?$")


@cache
def _table() -> Any:
    with warnings.catch_warnings():  # it reads its data with a deprecated importlib call
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm  # the 10 MB table is parsed here, once per process
    return simple_icd_10_cm


def icd10_title(code: str) -> str | None:
    """The ICD-10-CM title of a code (with or without its dot), None when it has none."""
    cleaned = code.strip().upper()
    if not ICD10_SHAPE.match(cleaned):
        return None
    table = _table()
    if not table.is_valid_item(cleaned):
        return None
    title: str = table.get_description(cleaned)
    return title or None


def diagnosis_title(code: str, sent_text: str = "") -> str:
    """What a person reads for a DG1-3: the code's ICD-10-CM title, else the text the feed
    sent (DG1-3.2), else the code."""
    return icd10_title(code) or sent_text.strip() or code.strip()


def diagnosis_titles(codes: Iterable[str]) -> dict[str, str]:
    """Code -> title for each code (the fallback is the code itself)."""
    return {code: diagnosis_title(code) for code in codes}
