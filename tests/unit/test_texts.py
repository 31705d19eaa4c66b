"""Locale resolution and the built-in texts."""

from __future__ import annotations

import pytest

from config_store.document import effective_settings, validate_document
from dispatcher.domain.events import template_variables
from dispatcher.domain.group_settings import effective_view
from dispatcher.domain.kinds import KIND_BY_NAME, KINDS
from dispatcher.domain.texts import builtin_texts
from dispatcher.mail.templating import check_source
from tests.support.documents import addresses_only, full


def settings_of(document: dict, default_locale: str | None = "de"):  # type: ignore[no-untyped-def]
    if default_locale is None:
        document.pop("default_locale", None)
    else:
        document["default_locale"] = default_locale
    return effective_settings(validate_document(document), "RETAIL", "Retail", 1)


@pytest.mark.parametrize("locale", ["de", "en"])
@pytest.mark.parametrize("kind", [k.name for k in KINDS])
def test_builtin_texts_exist_and_pass_the_same_checks(locale: str, kind: str) -> None:
    subject, body = builtin_texts()[locale][kind]
    variables = template_variables(KIND_BY_NAME[kind].event_type)
    assert subject.strip()
    assert body.strip()
    assert check_source(subject, variables, kind) == []
    assert check_source(body, variables, kind) == []


RESET = KIND_BY_NAME["password.reset"]


@pytest.mark.parametrize(
    ("recipient", "expected_subject", "subject_source", "locale"),
    [
        # Exact locale, then language, then the group's default, then built-in.
        ("en-GB", "Reset your password", "group translation (en)", "en"),
        ("en", "Reset your password", "group translation (en)", "en"),
        ("EN-us", "Reset your password", "group translation (en)", "en"),
        ("de-CH", "Passwort zurücksetzen", "group", "de"),
        ("fr-FR", "Passwort zurücksetzen", "group", "de"),
        (None, "Passwort zurücksetzen", "group", "de"),
    ],
)
def test_locale_fallback_chain(
    recipient: str | None, expected_subject: str, subject_source: str, locale: str
) -> None:
    text = settings_of(full()).text_for(RESET, recipient)
    assert (text.subject, text.subject_source, text.locale) == (
        expected_subject,
        subject_source,
        locale,
    )


def test_exact_locale_beats_language() -> None:
    document = full()
    document["translations"]["en-GB"] = {"password_reset": {"subject": "Reset it, mate"}}
    settings = settings_of(document)
    assert settings.text_for(RESET, "en-GB").subject == "Reset it, mate"
    assert settings.text_for(RESET, "en-US").subject == "Reset your password"


def test_missing_field_in_chosen_language_takes_builtin_of_that_language() -> None:
    document = full()
    document["translations"]["en"]["password_reset"] = {"subject": "Only a subject"}
    text = settings_of(document).text_for(RESET, "en")
    assert text.subject == "Only a subject"
    assert text.body == builtin_texts()["en"]["password.reset"][1]
    assert text.body_source == "built-in (en)"


def test_group_with_only_addresses_gets_builtin_texts_in_recipient_language() -> None:
    settings = settings_of(addresses_only(), default_locale=None)
    for kind in KINDS:
        german = settings.text_for(kind, None)
        english = settings.text_for(kind, "en-GB")
        assert (german.subject, german.subject_source) == (
            builtin_texts()["de"][kind.name][0],
            "built-in (de)",
        )
        assert (english.subject, english.subject_source) == (
            builtin_texts()["en"][kind.name][0],
            "built-in (en)",
        )


def test_language_without_builtin_texts_falls_back_to_english() -> None:
    settings = settings_of(addresses_only(), default_locale="fr")
    text = settings.text_for(RESET, "fr-FR")
    assert (text.locale, text.subject_source) == ("en", "built-in (en)")


def test_translation_in_base_language_refines_field_by_field() -> None:
    document = full()
    document["translations"]["de"] = {"password_reset": {"body": "Neuer Text {{ reset_url }}"}}
    text = settings_of(document).text_for(RESET, "de")
    assert (text.subject, text.subject_source) == ("Passwort zurücksetzen", "group")
    assert (text.body, text.body_source) == ("Neuer Text {{ reset_url }}", "group translation (de)")


def test_effective_view_names_every_source() -> None:
    document = full()
    del document["forgotten_username"]
    view = effective_view(settings_of(document), "en")
    assert view["password_reset"]["subject"] == {
        "value": "Reset your password",
        "source": "group translation (en)",
    }
    assert view["forgotten_username"]["subject"]["source"] == "built-in (en)"
    assert view["access_request.internal"]["body"]["source"] == "built-in (en)"
    assert view["notify_old_main_contact"]["send_email"] == {"value": False, "source": "group"}
    view_de = effective_view(settings_of(addresses_only()), None)
    assert view_de["notify_new_main_contact"]["send_email"] == {
        "value": False,
        "source": "built-in (off)",
    }
    assert view_de["new_validation"]["subject"]["source"] == "built-in (de)"
