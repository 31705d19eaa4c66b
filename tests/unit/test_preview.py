"""Previews of every kind, in German and English, with and without group texts."""

from __future__ import annotations

import pytest

from config_store.document import effective_settings, validate_document
from dispatcher.domain.kinds import KIND_BY_NAME, KINDS
from dispatcher.domain.samples import sample_event
from dispatcher.domain.texts import builtin_texts
from dispatcher.errors import InvalidEvent
from dispatcher.mail.preview import preview
from tests.support.documents import addresses_only, full

WITH_TEXTS = effective_settings(validate_document(full()), "RETAIL", "Retail", 1)
BUILT_IN_ONLY = effective_settings(validate_document(addresses_only()), "RETAIL", "Retail", 1)


@pytest.mark.parametrize("locale", ["de", "en"])
@pytest.mark.parametrize("kind", [k.name for k in KINDS])
def test_every_kind_renders_with_builtin_texts(kind: str, locale: str) -> None:
    result = preview(BUILT_IN_ONLY, KIND_BY_NAME[kind], locale)
    assert result.text.locale == locale
    assert result.text.subject_source == result.text.body_source == f"built-in ({locale})"
    assert result.email.subject
    assert "\n" not in result.email.subject
    assert result.email.text.strip()
    assert result.email.html.startswith("<!DOCTYPE html>")
    assert f'<html lang="{locale}">' in result.email.html
    greeting = "Guten Tag" if locale == "de" else "Hello"
    if kind != "access_request.internal":
        name = "Ben Weber" if kind == "main_contact.old" else "Anna Schmidt"
        assert result.email.text.startswith(f"{greeting} {name},")
        assert result.to.startswith(name)


@pytest.mark.parametrize("locale", ["de", "en"])
@pytest.mark.parametrize("kind", [k.name for k in KINDS])
def test_every_kind_renders_with_group_texts(kind: str, locale: str) -> None:
    found = KIND_BY_NAME[kind]
    result = preview(WITH_TEXTS, found, locale)
    if found.section is None:
        assert result.text.subject_source == f"built-in ({locale})"
    elif locale == "en" and kind == "password.reset":
        assert result.text.subject_source == "group translation (en)"
        assert result.email.subject == "Reset your password"
    else:
        # The group wrote German texts and no English ones: its own words
        # win over built-in English (recipient, language, group default).
        assert result.text.subject_source == "group"
        assert result.text.locale == "de"
    assert result.email.html.count("<p") >= 1


def test_preview_with_an_event_uses_its_recipient_and_language() -> None:
    event = sample_event(KIND_BY_NAME["main_contact.old"].event_type)
    event["old_contact"] = {"email": "old@example.com", "name": "Olga", "locale": "en-US"}
    result = preview(BUILT_IN_ONLY, KIND_BY_NAME["main_contact.old"], None, event)
    assert result.to == "Olga <old@example.com>"
    assert result.text.locale == "en"
    assert result.email.subject == builtin_texts()["en"]["main_contact.old"][0].replace(
        "{{ customer.name or customer.id }}", "Schmidt & Weber GmbH"
    )


def test_preview_refuses_an_event_of_another_type() -> None:
    event = sample_event(KIND_BY_NAME["password.reset"].event_type)
    with pytest.raises(InvalidEvent, match=r"come from 'customer\.validated' events"):
        preview(BUILT_IN_ONLY, KIND_BY_NAME["validation.new"], None, event)


def test_preview_refuses_a_bad_locale() -> None:
    with pytest.raises(InvalidEvent, match="locale: 'xx!' is not a valid language tag"):
        preview(BUILT_IN_ONLY, KIND_BY_NAME["validation.new"], "xx!")


def test_html_part_escapes_event_values() -> None:
    event = sample_event(KIND_BY_NAME["password.reset"].event_type)
    event["contact"]["name"] = "<script>alert(1)</script>"
    result = preview(BUILT_IN_ONLY, KIND_BY_NAME["password.reset"], "en", event)
    assert "<script>" not in result.email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in result.email.html
    assert "<script>alert(1)</script>" in result.email.text
