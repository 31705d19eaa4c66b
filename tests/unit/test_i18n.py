"""The message catalogue: complete in both languages, and the corpora come out in German.

``dispatcher/i18n`` translates the product's English messages at the API's
boundary. These tests keep it honest: every key has a German and an English
text with the same placeholders, every message the validation corpora
produce has a translation (an English message edited without its key fails
here), and no answer carries advice only the command line can follow.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import create_engine

from config_store.document import validate_document
from dispatcher.admin.pipeline import CeleryPipeline
from dispatcher.admin.relays import UnknownRelay
from dispatcher.admin.status import readiness
from dispatcher.delivery.suppressions import NotSuppressed
from dispatcher.domain.addresses import AddressProblem, parse_mailbox
from dispatcher.domain.events import parse_event
from dispatcher.errors import (
    AddressSuppressed,
    DispatcherError,
    GroupExists,
    InvalidInput,
    NoSettings,
    PartlyEnqueued,
    StillUnderWay,
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
    translate_record,
)
from dispatcher.settings import Settings
from dispatcher.smtp.check import failure_text
from dispatcher.smtp.relays import Relay
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


def server_messages() -> list[str]:
    """What the API shows besides validation: refusals, relay checks, readiness.

    Made by the code that writes them, so that an English message edited
    without its catalogue key fails here.
    """
    since = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    relay = Relay("primary", "smtp.example.com", 587, "starttls", timeout=5)
    failures: list[OSError | smtplib.SMTPException] = [
        smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"),
        smtplib.SMTPResponseException(554, b"5.7.1 go away"),
        smtplib.SMTPResponseException(421, b""),
        smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."),
        ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"),
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        socket.gaierror(-2, "Name or service not known"),
        OSError(113, "No route to host"),
    ]
    broken = CeleryPipeline(Settings(database_url="sqlite://", broker_url="redis://127.0.0.1:1/0"))
    # Disposed at once: Python 3.13 warns about a SQLite connection left to the
    # garbage collector, and the warning fails whichever test happens to run then.
    engines = (create_engine("sqlite://"), create_engine("sqlite:////nonexistent-directory/x.db"))
    try:
        no_schema = readiness(engines[0], broken)
        unreachable = readiness(engines[1], broken)
    finally:
        for engine in engines:
            engine.dispose()
    return [
        str(AddressSuppressed("kim@example.com", since, "asked to stop")),
        str(StillUnderWay(7, "queued")),
        str(UnknownRelay("nope", ("primary", "backup"))),
        str(NotSuppressed("kim@example.com")),
        *(failure_text(exc, relay, 5) for exc in failures),
        no_schema.database,
        no_schema.broker,
        unreachable.database,
    ]


# What workers and the bounce server write into the record (a delivery's last
# reply, bounce and feedback; a suppression's reason), as they write it: the
# API shows these in the reader's language. A relay's own words inside stay
# as they are.
RECORD_TEXTS = (
    "the address is on the suppression list: hard bounce 5.1.1: 5.1.1 smtp; 550 5.1.1 "
    "refused (reported by mx.example.net)",
    "the address is on the suppression list: asked to stop",
    "cooldown: already 5 password.reset e-mails to this address in 60 minutes",
    "group rate limit: 3 e-mails per minute",
    "cannot render: line 3: the template takes more than 100000 steps",
    "gave up after 8 attempts; last: RCPT TO refused: 4.2.2 mailbox full",
    "the worker sending it stopped; sending again",
    "every relay of the route failed (primary, backup); last: cannot connect to the SMTP "
    "server at smtp2.example.com:25: [Errno 111] Connection refused",
    "every relay of the route is paused after failures (primary, backup); the e-mail waits "
    "for one to recover",
    "SMTP authentication at smtp.example.com:587 failed (535); check DISPATCHER_SMTP_USERNAME "
    "and DISPATCHER_SMTP_PASSWORD",
    "the SMTP server at smtp.example.com:587 does not support this: STARTTLS extension not "
    "supported by server.; check DISPATCHER_SMTP_SECURITY",
    "the SMTP server at smtp.example.com:587 refused the connection: 4.3.2 try later",
    "TLS with smtp.example.com:465 failed: WRONG_VERSION_NUMBER; check "
    "DISPATCHER_SMTP_SECURITY and the server's certificate",
    "the SMTP server closed the connection",
    "MAIL FROM refused: 5.7.1 sender rejected",
    "DATA refused: 5.6.0 message content rejected",
    "message refused: 5.7.1 spam",
    "the SMTP server dropped the connection at RCPT TO: Connection unexpectedly closed",
    "the connection was lost after the message was sent, before the reply",
    "the connection failed after the message was sent: [Errno 104] Connection reset by peer",
    "the SMTP connection failed at MAIL FROM: [Errno 32] Broken pipe",
    "no reply within 20 s after the message was sent",
    "the SMTP server did not answer within 20 s at RCPT TO",
    "hard bounce 5.1.1: 5.1.1 smtp; 550 5.1.1 refused (reported by mx.example.net)",
    "the recipient's server refused the e-mail",
    "delayed: 4.4.7 smtp; 450 4.4.7 still trying (reported by mx.example.net)",
    "auto-reply: an automatic reply (out of office or similar)",
    "unreadable reply: a message came back that is not a readable bounce",
)


def test_every_message_of_the_corpora_has_a_german_translation() -> None:
    messages = (
        {message for _, message in document_messages()}
        | set(error_messages())
        | set(server_messages())
        | set(RECORD_TEXTS)
    )
    assert len(messages) > 100
    missing = sorted(message for message in messages if not is_translated(message, "de"))
    assert missing == [], "\n".join(missing)


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_translated_message_gives_command_line_advice(language: str) -> None:
    messages = (
        {message for _, message in document_messages()}
        | set(error_messages())
        | set(server_messages())
        | set(RECORD_TEXTS)
    )
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


def test_record_texts_keep_other_peoples_words() -> None:
    # A relay's reply and a reason an administrator typed stay as written;
    # the product's words around them are translated.
    assert translate_record("2.0.0 Ok: queued as 4XyZ", "de") == "2.0.0 Ok: queued as 4XyZ"
    assert translate_record("asked to stop; see dispatcher docs", "de") == (
        "asked to stop; see dispatcher docs"
    )
    assert translate_record(
        "the address is on the suppression list: hard bounce 5.1.1: 5.1.1 user unknown "
        "(reported by mx.example.net)",
        "de",
    ) == (
        "Die Adresse steht auf der Sperrliste: Harter Bounce 5.1.1: 5.1.1 user unknown "
        "(gemeldet von mx.example.net)"
    )
    # Identifiers inside a message are shown by their labels.
    assert translate_record(RECORD_TEXTS[2], "de") == (
        "Sperrfrist: bereits 5 E-Mails „Passwort zurücksetzen“ an diese Adresse in 60 Minuten"
    )
    assert translate(str(StillUnderWay(7, "queued")), "de").startswith(
        "Die Zustellung 7 hat noch den Status „Wartet“"
    )
    assert translate_record(None, "de") is None


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
    keys = [
        key
        for key in german
        if key.startswith(("status.", "event_type.", "kind.", "breaker.", "security.", "hint."))
    ]
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
