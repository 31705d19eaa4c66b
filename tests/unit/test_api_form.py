"""The web UI's form follows the help page: its sections, order, labels and hints."""

from __future__ import annotations

import pytest

from dispatcher.api.form import SECTIONS_SPEC, form_description
from dispatcher.domain.kinds import SECTIONS
from tests.support.documents import HELP_PAGE_SECTIONS
from tests.support.harness import ROOT

HELP_PAGE = ROOT.parent / "shared" / "reference" / "portal-emails-setup.de.txt"


def test_sections_follow_the_help_page_and_the_document() -> None:
    assert [s.title_de for s in SECTIONS_SPEC] == HELP_PAGE_SECTIONS
    assert tuple(s.key for s in SECTIONS_SPEC) == ("internal_addresses", *SECTIONS)
    customer = SECTIONS_SPEC[1]
    assert [f.label_de for f in customer.fields] == [
        "E-Mail an Kunden senden, die den Portalzugriff nicht selbst initiiert haben",
        "Zugriffsanforderung (Betreff)",
        "Zugriffsanforderung (Inhalt)",
    ]
    assert [f.key for f in customer.fields] == [
        "send_to_customers_not_self_initiated",
        "subject",
        "body",
    ]


def test_every_field_has_both_languages() -> None:
    description = form_description()
    for section in description["sections"]:
        assert section["title_en"]
        for field in section["fields"]:
            assert field["label_de"]
            assert field["label_en"]
            assert field["hint_de"]
            assert field["hint_en"]
    assert [k["name"] for k in description["kinds"]][-1] == "password.reset"


@pytest.mark.skipif(not HELP_PAGE.exists(), reason="the shared help page is not next to the repo")
def test_german_labels_and_hints_are_the_help_pages_words() -> None:
    text = " ".join(HELP_PAGE.read_text("utf-8").split())
    for section in SECTIONS_SPEC:
        assert f'"{section.title_de}"' in text, section.title_de
        for field in section.fields:
            assert field.label_de in text, field.label_de
            assert field.hint_de in text, field.hint_de
