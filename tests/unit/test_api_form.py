"""The web UI's form follows the help page: its sections, order, labels and hints."""

from __future__ import annotations

import pytest

from dispatcher.admin.relays import BREAKER_NAMES
from dispatcher.api.form import SECTIONS_SPEC, form_description
from dispatcher.domain.events import template_variables
from dispatcher.domain.kinds import KIND_BY_SECTION, SECTIONS, EventType
from dispatcher.domain.samples import sample_contexts
from dispatcher.domain.statuses import STATUSES, WebhookStatus
from dispatcher.domain.texts import resolve
from dispatcher.mail.templating import check_source, render_text
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


def test_every_status_event_type_and_state_has_labels_in_both_languages() -> None:
    description = form_description()
    assert [s["name"] for s in description["statuses"]] == list(STATUSES)
    assert {e["name"] for e in description["event_types"]} == {e.value for e in EventType}
    assert {w["name"] for w in description["webhook_states"]} == {w.value for w in WebhookStatus}
    assert {b["name"] for b in description["breaker_states"]} == set(BREAKER_NAMES.values())
    for table in ("statuses", "event_types", "webhook_states", "breaker_states", "security"):
        for item in description[table]:
            assert item["label_de"], item
            assert item["label_en"], item
            # Labels, not the identifiers again.
            assert item["label_de"] != item["name"] or item["name"].isupper(), item


def test_the_built_in_texts_are_the_ones_that_apply_to_empty_fields() -> None:
    builtin = form_description()["builtin"]
    assert set(builtin) == {"de", "en"}
    for section in SECTIONS:
        kind = KIND_BY_SECTION[section]
        for locale in ("de", "en"):
            resolved = resolve(kind, locale, locale, {})
            assert builtin[locale][section] == {"subject": resolved.subject, "body": resolved.body}


@pytest.mark.parametrize("section", SECTIONS)
def test_each_offered_variable_is_known_labelled_and_inserts_a_working_snippet(
    section: str,
) -> None:
    kind = KIND_BY_SECTION[section]
    [spec] = [s for s in form_description()["sections"] if s["key"] == section]
    variables = spec["variables"]
    names = [v["name"] for v in variables]
    assert len(names) == len(set(names))
    assert names[0].startswith("recipient.")
    offered = template_variables(kind.event_type)
    for variable in variables:
        assert variable["label_de"]
        assert variable["label_en"]
        top = variable["name"].split(".")[0]
        assert top in offered, variable
        # The snippet passes the save-time check and renders with every field
        # present and with the optional ones left out.
        assert check_source(variable["insert"], offered, "a test") == [], variable
        for _, context in sample_contexts(kind):
            rendered = render_text(variable["insert"], context)
            assert "None" not in rendered, variable
            assert "T09:30" not in rendered, variable  # timestamps are formatted


def test_the_internal_addresses_offer_no_variables() -> None:
    [spec] = [s for s in form_description()["sections"] if s["key"] == "internal_addresses"]
    assert spec["variables"] == []
