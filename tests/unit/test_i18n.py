"""The message catalogue: complete in both languages, and the corpora come out in German.

``dispatcher/i18n`` translates the product's English messages at the API's
boundary. These tests keep it honest: every key has a German and an English
text with the same placeholders, every message the validation corpora
produce has a translation (an English message edited without its key fails
here), and no answer carries advice only the command line can follow.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from config_store.document import validate_document
from dispatcher.domain.addresses import AddressProblem, parse_mailbox
from dispatcher.domain.events import parse_event
from dispatcher.errors import (
    DispatcherError,
    GroupExists,
    InvalidInput,
    NoSettings,
    PartlyEnqueued,
    UnknownDelivery,
    UnknownGroup,
    UnknownVersion,
    VersionConflict,
)
from dispatcher.i18n import (
    LANGUAGES,
    catalogue,
    is_translated,
    label,
    negotiate,
    strip_cli_advice,
    translate,
)
from tests.integration.test_hostile import ADDRESSES, INJECTIONS, TEMPLATES
from tests.support.documents import full
from tests.unit.test_events import CASES as EVENT_CASES
from tests.unit.test_validation import CASES as DOCUMENT_CASES

LOCALE = Path(__file__).resolve().parents[2] / "dispatcher" / "i18n" / "locale"
PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
# Advice a web UI user cannot follow.
CLI_ADVICE = re.compile(r"dispatcher [a-z]|--[a-z]|\brun:|see it with|pass --", re.IGNORECASE)


def entries(language: str) -> dict[str, str]:
    with (LOCALE / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return {str(m.id): str(m.string) for m in read_po(handle, locale=language) if m.id}


def test_every_key_is_in_both_languages_with_the_same_placeholders() -> None:
    german, english = entries("de"), entries("en")
    assert german.keys() == english.keys()
    for key in german:
        for language, text in (("de", german[key]), ("en", english[key])):
            assert text, f"{key!r} has no {language} text"
            assert sorted(set(PLACEHOLDER.findall(text))) == sorted(
                set(PLACEHOLDER.findall(key))
            ), f"{key!r} in {language}: {text!r}"
            assert not CLI_ADVICE.search(text), f"{key!r} in {language}: {text!r}"


def test_the_german_texts_are_german() -> None:
    german, english = entries("de"), entries("en")
    same = [key for key in german if german[key] == english[key] and PLACEHOLDER.sub("", key)]
    # A few are the same in both (a code, a unit); nothing longer than a word.
    assert all(len(PLACEHOLDER.sub("", key).split()) <= 2 for key in same), same


def document_messages() -> Iterator[tuple[str, str]]:
    """(path, message) of everything the validation corpora refuse."""
    for _, mutate, _, _ in DOCUMENT_CASES:
        document = full()
        mutate(document)
        yield from _refusals(document)
    for template in TEMPLATES:
        for field in ("subject", "body"):
            document = full()
            document["password_reset"][field] = template
            yield from _refusals(document)
    for value in INJECTIONS:
        document = full()
        document["password_reset"]["subject"] = value
        yield from _refusals(document)
        document = full()
        document["internal_addresses"]["send_from"] = f'"{value}" <portal@example.com>'
        yield from _refusals(document)
    for address, accepted in ADDRESSES:
        if not accepted:
            for display_name in (False, True):
                try:
                    parse_mailbox(address, allow_display_name=display_name)
                except AddressProblem as exc:
                    yield "address", str(exc)
    for raw, _, _ in EVENT_CASES:
        try:
            parse_event(raw)
        except InvalidInput as exc:
            yield from ((e.path, e.message) for e in exc.errors)


def _refusals(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    try:
        validate_document(document)
    except InvalidInput as exc:
        yield from ((e.path, e.message) for e in exc.errors)


def error_messages() -> list[str]:
    """The one-line errors the API shows as 404, 409 and 503 answers."""
    return [
        str(UnknownGroup("RETAIL")),
        str(GroupExists("RETAIL")),
        str(NoSettings("RETAIL")),
        str(UnknownVersion("RETAIL", 9, 3)),
        str(UnknownVersion("RETAIL", 9, None)),
        str(VersionConflict("RETAIL", 1, 2)),
        str(UnknownDelivery(42)),
        str(PartlyEnqueued(2, 4, "cannot reach the broker at redis://127.0.0.1:1/0 (refused)")),
    ]


def test_every_message_of_the_corpora_has_a_german_translation() -> None:
    messages = {message for _, message in document_messages()} | set(error_messages())
    assert len(messages) > 100
    missing = sorted(message for message in messages if not is_translated(message, "de"))
    assert missing == [], "\n".join(missing)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_translated_message_gives_command_line_advice(language: str) -> None:
    messages = {message for _, message in document_messages()} | set(error_messages())
    for message in messages:
        translated = translate(message, language)
        assert not CLI_ADVICE.search(translated), (message, translated)
        assert "{" not in translated or "{" in message, (message, translated)


def test_translation_keeps_the_values_and_translates_nested_messages() -> None:
    message = (
        "is not a valid e-mail address (An email address must have an @-sign); "
        "write it as name@example.com"
    )
    assert translate(message, "de") == (
        "ist keine gültige E-Mail-Adresse (eine E-Mail-Adresse braucht ein @-Zeichen); "
        "schreiben Sie sie als name@example.com"
    )
    assert translate(str(UnknownGroup("DEMO")), "de") == (
        "Die Kundengruppe 'DEMO' ist für das Portal nicht eingerichtet; legen Sie sie zuerst an."
    )
    assert translate(str(UnknownGroup("DEMO")), "en") == (
        "customer group 'DEMO' is not set up for the portal; add it first"
    )
    # Unknown text stays English, without command-line advice.
    assert translate("something new; run: dispatcher db upgrade", "de") == "something new"


def test_strip_cli_advice() -> None:
    assert strip_cli_advice("x; see it with: dispatcher groups show X") == "x"
    assert strip_cli_advice('must not be empty; pass --name "Retail customers"') == (
        "must not be empty"
    )
    assert strip_cli_advice("no version 9 (see: dispatcher settings history X)") == ("no version 9")
    assert strip_cli_advice("plain") == "plain"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        (None, "en"),
        ("", "en"),
        ("de", "de"),
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("en-US,en;q=0.9,de;q=0.8", "en"),
        ("fr, de;q=0.5", "de"),
        ("fr", "en"),
        ("de;q=0", "en"),
        ("en;q=0.5, de;q=0.9", "de"),
        ("*", "en"),
    ],
)
def test_the_language_is_negotiated_from_accept_language(header: str | None, language: str) -> None:
    assert negotiate(header) == language


def test_labels_are_in_both_languages() -> None:
    german, english = catalogue("de").strings, catalogue("en").strings
    keys = [key for key in german if key.startswith(("status.", "event_type.", "kind."))]
    assert keys
    for key in keys:
        assert label(key, "de") != key
        assert label(key, "en") != key
        assert key in english


def test_an_unknown_message_type_is_a_dispatcher_error_still() -> None:
    # The catalogue translates text, never exceptions: a plain DispatcherError
    # passes through as its English text (without advice) in both languages.
    text = str(DispatcherError("a brand new problem; see it with: dispatcher status"))
    assert translate(text, "de") == "a brand new problem"
