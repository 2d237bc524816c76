"""The printed plan's Spanish catalog keeps up with its template: every sentence the template
says is in the template catalog (messages.pot) and translated in es/messages.po, not fuzzy,
with the same %(placeholders)s. Nothing compiled is committed: the .po is read at run time."""

from __future__ import annotations

import re

from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from workers.web.patient_print import HERE, LOCALE_DIR, TEMPLATE, catalog_path

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def template_messages() -> set[str]:
    with (HERE / "templates" / TEMPLATE).open("rb") as source:
        found = babel_extract(source, ("_", "gettext"), [], {})
        # a call with %(placeholders)s comes as (message, None, ...): one None per keyword
        return {m if isinstance(m, str) else m[0] for _, _, m, _ in found}


def test_the_template_catalog_lists_every_sentence_of_the_template() -> None:
    with (LOCALE_DIR / "messages.pot").open("rb") as source:
        listed = {m.id for m in read_po(source) if m.id}
    assert template_messages() - listed == set(), "run pybabel extract (patient_print.py)"
    assert len(template_messages()) > 30


def test_every_sentence_has_a_spanish_translation_with_the_same_placeholders() -> None:
    with catalog_path("es").open("rb") as source:
        catalog = read_po(source, locale="es")
    translated = {m.id: m for m in catalog if m.id}
    for sentence in template_messages():
        message = translated.get(sentence)
        assert message is not None and message.string, f"not translated: {sentence}"
        assert not message.fuzzy, f"fuzzy: {sentence}"
        assert sorted(PLACEHOLDER.findall(str(message.string))) == sorted(
            PLACEHOLDER.findall(sentence)
        ), sentence
    assert list(catalog.check()) == []
