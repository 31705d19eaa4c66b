"""Headers on the wire: RFC 2047 encoded-words of at most 75 characters, lines of at most 78.

Every header of e-mails with long German subjects and display names is
parsed: each encoded-word is well formed (UTF-8, Q, only characters RFC 2047
allows, whole characters), each line within the limit, and the values read
back exactly, DKIM-signed or not.
"""

from __future__ import annotations

import email
import email.policy
import quopri
import re
from datetime import UTC, datetime
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from config_store.document import effective_settings, validate_document
from dispatcher.domain.addresses import AddressProblem, Mailbox, parse_mailbox
from dispatcher.mail import headers
from dispatcher.mail.dkim import DkimKeys
from dispatcher.mail.render import RenderedEmail, build_message
from dispatcher.mail.wire import to_bytes
from tests.support.documents import full
from tests.support.mailheaders import (
    ENCODED_WORD,
    decoded,
    head_of,
    limit_problems,
    mailbox_of,
    raw_header,
)

SUBJECTS = [
    "Zugang zum Kundenportal für Großhandel Müller & Söhne GmbH \u2013 bitte bestätigen Sie die "
    "Änderung Ihres Hauptansprechpartners bis übermorgen früh",
    "Ihr Passwort für das Kundenportal der Großhandelsgesellschaft Süd-Württemberg zurücksetzen",
    "Überprüfung: " + "Änderungsmitteilungsübermittlungsverordnungsgrundsätze" * 3,
    "Grüße " * 40,
    "Straße, Größe, Maß: äöüÄÖÜß€ \u2013 „Anführungszeichen“ und \u201ahalbe\u2018 » « … ✓ 😀" * 3,
    "Kurz und gut",
    "Plain ASCII words that go on for a while and need folding at spaces " * 3,
    "x" * 120,
    "Fragen? =?utf-8?q?Antworten?= = Hilfe für " + "ö" * 30,
]
NAMES = [
    "Großhandel Portal",
    "Großhandel Portal Süd-Württemberg, Abteilung Kundenbetreuung und Forderungsmanagement",
    "Jürgen Müller-Lüdenscheidt-Übermaß",
    "Änderungsmitteilungsübermittlungsverordnungsgrundsätzebeauftragter",
    "Kundenportal",
    "Müller, Hans (Buchhaltung) <intern>",
    'Zoë "Z" Ångström',
    "A" * 150,
]


def build(subject: str, sender_name: str | None, recipient_name: str | None) -> bytes:
    rendered = RenderedEmail(subject=subject, text="Grüße\n", html="<p>Grüße</p>", locale="de")
    message = build_message(
        rendered,
        Mailbox("noreply@grosshandel.example.com", sender_name),
        Mailbox("kunde@example.org", recipient_name),
        "<0123456789abcdef0123456789abcdef@grosshandel.example.com>",
        datetime(2026, 11, 27, 10, 0, tzinfo=UTC),
    )
    return to_bytes(message)


def check_encoded_words(raw: bytes) -> None:
    """Every encoded-word: UTF-8, Q, allowed characters, whole characters."""
    for line in re.split(r"\r?\n", head_of(raw)):
        name, _, _ = line.partition(":")
        phrase = name.lower() in {"from", "to"} or (line[:1] == " " and _in_address(raw, line))
        for match in ENCODED_WORD.finditer(line):
            charset, encoding, text = match.groups()
            assert (charset, encoding) == ("utf-8", "q"), match.group(0)
            allowed = r"[A-Za-z0-9!*+\-/=_]" if phrase else r"[!-~]"
            assert re.fullmatch(f"(?:{allowed})*", text), match.group(0)
            assert "?" not in text
            data = quopri.decodestring(text.replace("_", " ").encode(), header=True)
            data.decode("utf-8")  # No character split across two encoded-words.


def _in_address(raw: bytes, line: str) -> bool:
    return any(line.strip() in raw_header(raw, name) for name in ("From", "To"))


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("name", NAMES)
def test_long_german_subjects_and_names_keep_the_rfc_2047_and_line_limits(
    subject: str, name: str
) -> None:
    raw = build(subject, name, name)
    assert limit_problems(raw) == []
    check_encoded_words(raw)
    reader = email.message_from_bytes(raw, policy=email.policy.default)
    assert all(str(reader[header]) is not None for header in reader)  # Every header parses.
    assert str(reader["Subject"]) == subject
    assert decoded(raw_header(raw, "Subject")) == subject
    assert mailbox_of(raw, "From") == (name, "noreply@grosshandel.example.com")
    assert mailbox_of(raw, "To") == (name, "kunde@example.org")
    assert reader["From"].addresses[0].addr_spec == "noreply@grosshandel.example.com"
    assert reader["To"].addresses[0].addr_spec == "kunde@example.org"
    if "?= =?" not in raw_header(raw, "From"):  # No adjacent encoded-words:
        # Python's own parser agrees (it keeps the space between adjacent ones).
        assert reader["From"].addresses[0].display_name == name


def test_an_unquoted_german_sender_is_accepted_and_encoded_on_the_wire() -> None:
    document = full()
    document["internal_addresses"]["send_from"] = (
        "Großhandel Portal <noreply@grosshandel.example.com>"
    )
    settings = effective_settings(validate_document(document), "G", "Gruppe", 1)
    assert settings.sender == Mailbox("noreply@grosshandel.example.com", "Großhandel Portal")
    assert settings.send_from == "Großhandel Portal <noreply@grosshandel.example.com>"
    raw = build("Hallo", settings.sender.display_name, None)
    assert raw_header(raw, "From") == (
        "=?utf-8?q?Gro=C3=9Fhandel?= Portal <noreply@grosshandel.example.com>"
    )
    assert mailbox_of(raw, "From") == ("Großhandel Portal", "noreply@grosshandel.example.com")


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("Großhandel Portal <noreply@grosshandel.example.com>", "Großhandel Portal"),
        ("Zoë Ångström <zoe@example.com>", "Zoë Ångström"),
        ("日本語 サポート <support@example.com>", "日本語 サポート"),
        ("Müller & Söhne <info@example.com>", "Müller & Söhne"),
        ('"Müller, Hans" <hans@example.com>', "Müller, Hans"),
    ],
)
def test_display_names_with_any_letters_need_no_quotes(value: str, name: str) -> None:
    assert parse_mailbox(value, allow_display_name=True).display_name == name


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Groß\u202ehandel <a@example.com>", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("Groß\u200bhandel <a@example.com>", "U+200B ZERO WIDTH SPACE"),
        ("Groß\u0007handel <a@example.com>", "U+0007"),
        ("Groß\u2066handel <a@example.com>", "U+2066"),
        ("\u0301Großhandel <a@example.com>", "unsafe characters"),
        ("Müller, Hans <a@example.com>", "display name contains ',', which needs quotes"),
        ("Müller GmbH & Co. KG <a@example.com>", "display name contains '.', which needs"),
        ("Jörg =?utf-8?q?x?= <a@example.com>", "encoded-word"),
        ("Jörg <jörg@example.com>", "SMTPUTF8"),
    ],
)
def test_unquoted_names_still_refuse_controls_bidi_and_specials(value: str, problem: str) -> None:
    with pytest.raises(AddressProblem, match=re.escape(problem)):
        parse_mailbox(value, allow_display_name=True)


def test_the_unquoted_sender_is_accepted_by_settings_import_and_the_document() -> None:
    document = full()
    document["internal_addresses"]["send_from"] = "Zoë Ångström <zoe@example.com>"
    validated = validate_document(document)
    assert validated.internal_addresses.send_from == "Zoë Ångström <zoe@example.com>"


def test_folding_keeps_ascii_words_readable_and_encodes_only_what_needs_it() -> None:
    folded = headers.unstructured("Subject", "Ihr Zugang zum Portal für Großhandel")
    assert folded.lines == ("Ihr Zugang zum Portal =?utf-8?q?f=C3=BCr_Gro=C3=9Fhandel?=",)
    assert folded == "Ihr Zugang zum Portal für Großhandel"
    assert headers.unstructured("Subject", "a  b").lines == ("=?utf-8?q?a__b?=",)
    assert headers.mailbox("To", None, "a@example.com").lines == ("a@example.com",)
    assert headers.mailbox("To", "Anna Muster", "a@example.com") == "Anna Muster <a@example.com>"


@pytest.mark.parametrize("subject", SUBJECTS[:3])
def test_signed_messages_keep_the_limits_and_verify(tmp_path: Path, subject: str) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "grosshandel.example.com").mkdir()
    (tmp_path / "grosshandel.example.com" / "portal.key").write_bytes(pem)
    keys = DkimKeys.load(tmp_path)
    signed = keys.sign(build(subject, NAMES[1], NAMES[2]), "grosshandel.example.com")
    assert limit_problems(signed) == []
    records = {}
    for record in keys.dns_record("grosshandel.example.com"):
        host, _, rest = record.partition(" ")
        records[host.rstrip(".").encode() + b"."] = "".join(re.findall(r'"([^"]*)"', rest)).encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name.lower())

    assert dkim.verify(signed, dnsfunc=dnsfunc)
