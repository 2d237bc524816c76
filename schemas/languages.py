"""Preferred languages as words. Feeds send PID-15 (HL7 table 0296, user-defined) as ISO 639
codes in either form ("es", "spa", "SPA^Spanish") or, now and then, as the language's name
("Spanish"). The names come from the Unicode CLDR through Babel, so they exist in English
and in Spanish alike; CLDR's language aliases map the three-letter codes (spa, ger, chi) to
the two-letter ones. A value that names no language is shown as sent."""

from __future__ import annotations

from functools import cache

from babel.core import Locale, get_global

# The languages carebridge writes the patient's care plan in (the others read it in English).
PLAN_LANGUAGES = ("en", "es")


@cache
def _names(locale: str) -> dict[str, str]:
    return dict(Locale.parse(locale).languages)


@cache
def _by_name() -> dict[str, str]:
    """Every language's name in every plan language, lower case -> its code."""
    found: dict[str, str] = {}
    for locale in PLAN_LANGUAGES:
        for code, name in _names(locale).items():
            found.setdefault(name.casefold(), code)
    return found


def _tag_of(text: str) -> str | None:
    code = text.casefold().replace("_", "-").split("-")[0]
    names = _names("en")
    if code in names and code != "und":
        return code
    aliases = get_global("language_aliases")
    alias = str(aliases.get(code, "")).split("_")[0]
    if alias in names:
        return alias
    return _by_name().get(text.casefold())


def language_tag(value: str) -> str | None:
    """The ISO 639 code (two letters where one exists) a PID-15 value means, or None: its
    identifier ("SPA"), else its text ("Spanish")."""
    for component in value.split("^")[:2]:
        if component.strip() and (tag := _tag_of(component.strip())):
            return tag
    return None


def language_name(value: str, in_language: str = "en") -> str:
    """ "Spanish" for es, spa, SPA^Spanish; "español" in Spanish; the value as sent when it
    names no language CLDR knows; "" for no value."""
    tag = language_tag(value)
    if tag is None:
        return next((c.strip() for c in value.split("^") if c.strip()), "")
    return _names(in_language).get(tag) or _names("en").get(tag) or value


def plan_language(value: str) -> str:
    """The language a patient's printed plan is written in: theirs when carebridge has it,
    else English."""
    tag = language_tag(value)
    return tag if tag in PLAN_LANGUAGES else "en"
