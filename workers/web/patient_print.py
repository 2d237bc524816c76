"""The patient's printed care plan in their language: one Jinja2 environment per language with
the i18n extension and that language's gettext catalog (workers/web/locale/<lang>/LC_MESSAGES/
messages.po), read with Babel when first used; dates and times in the language's own form.

To change a sentence: edit the template, then
`pybabel extract -F workers/web/babel.cfg -o workers/web/locale/messages.pot .` and
`pybabel update -i workers/web/locale/messages.pot -d workers/web/locale`, and translate
the new entries (tests/unit/test_plan_translations.py fails for one left out)."""

from __future__ import annotations

from datetime import date, datetime, time
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

from schemas.languages import PLAN_LANGUAGES, language_name
from schemas.patient_plan import PatientPlan

HERE = Path(__file__).resolve().parent
LOCALE_DIR = HERE / "locale"
TEMPLATE = "care_plan_print.html"
# The CLDR locale for dates and times, and a weekday-and-date without the year.
CLDR_LOCALE = {"en": "en_US", "es": "es_US"}
DAY_PATTERN = {"en": "EEEE, MMMM d", "es": "EEEE d 'de' MMMM"}


def catalog_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"


@cache
def translations(language: str) -> NullTranslations:
    """English is the template's own text; another language's catalog is compiled in memory
    from its .po (nothing compiled is kept in the repository)."""
    if language == "en":
        return NullTranslations()
    with catalog_path(language).open("rb") as source:
        catalog = read_po(source, locale=language)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


@cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    cldr = CLDR_LOCALE.get(language, "en_US")

    def day(value: date | datetime) -> str:
        return format_date(value, DAY_PATTERN.get(language, DAY_PATTERN["en"]), locale=cldr)

    def long_date(value: date) -> str:
        return format_date(value, "long", locale=cldr)

    def clock(value: time | datetime) -> str:
        return format_time(value, "short", locale=cldr)

    def clock_ending(value: time | datetime) -> str:
        """A time that ends a sentence: its abbreviation's period is the sentence's
        ("a las 10:00 a.m.", not "a.m..")."""
        return clock(value).rstrip(".")

    env.filters.update(day=day, long_date=long_date, clock=clock, clock_ending=clock_ending)
    return env


def render_patient_plan(plan: PatientPlan, nonce: str) -> str:
    """The page; `nonce` is the response's Content-Security-Policy nonce (the print button)."""
    languages = [(code, language_name(code, code)) for code in PLAN_LANGUAGES]
    template = environment(plan.language).get_template(TEMPLATE)
    return template.render(plan=plan, nonce=nonce, languages=languages)
