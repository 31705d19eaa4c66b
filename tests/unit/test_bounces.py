"""Reading bounces: a corpus of real ones, the classification rules, and hostile input."""

from __future__ import annotations

import logging
import random
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dispatcher.domain.return_path import read_return_path
from dispatcher.mail import bounces
from dispatcher.mail.bounces import (
    MAX_BOUNCE_BYTES,
    MAX_DIAGNOSTIC,
    MAX_RECIPIENTS,
    Bounce,
    Classification,
    parse_bounce,
)

CORPUS = Path(__file__).resolve().parents[1] / "support" / "bounces"
# The own-*.eml files are addressed to return paths made with these (see the README there).
SECRET = "test-secret-key"
BOUNCE_DOMAIN = "bounces.example.com"

HARD, SOFT, AUTO, UNKNOWN = (
    Classification.HARD,
    Classification.SOFT,
    Classification.AUTO_REPLY,
    Classification.UNKNOWN,
)


@dataclass(frozen=True)
class Expected:
    classification: Classification
    source: str
    # (address, status) of every recipient, in order.
    recipients: tuple[tuple[str | None, str | None], ...] = ()
    smtp_code: int | None = None  # of the first recipient
    delivery: int | None = None  # what the return path names (own-*.eml only)


EXPECTED: dict[str, Expected] = {
    # Written for the dispatcher: Office 365, Exchange, Postfix, Exim, out of office.
    "own-office365-recipient-not-found.eml": Expected(
        HARD, "dsn", (("erika.mustermann@contoso.example", "5.1.10"),), 550, delivery=4711
    ),
    "own-exchange2016-mailbox-full-de.eml": Expected(
        SOFT, "dsn", (("max.mustermann@kunde.example.de", "5.2.2"),), 554, delivery=4712
    ),
    "own-postfix-delayed.eml": Expected(
        SOFT, "dsn", (("kunde@langsam.example.net", "4.4.1"),), None, delivery=4713
    ),
    "own-exim-delay-warning.eml": Expected(
        SOFT, "text", (("kundin@grau.example.net", "4.7.1"),), 451, delivery=4714
    ),
    "own-exim-550-text.eml": Expected(
        HARD, "text", (("gibtsnicht@example.net", "5.1.1"),), 550, delivery=4715
    ),
    "own-outlook-automatische-antwort-de.eml": Expected(AUTO, "auto_reply", delivery=4711),
    "own-abwesenheitsnotiz-subject-only.eml": Expected(AUTO, "auto_reply", delivery=4712),
    # Postfix
    "sisimai-lhost-postfix-02.eml": Expected(
        HARD,
        "dsn",
        (("filtered@example.co.jp", "5.2.1"), ("userunknown@example.co.jp", "5.1.1")),
        550,
    ),
    "sisimai-lhost-postfix-04.eml": Expected(
        HARD, "dsn", (("kijitora@example.co.jp", "5.1.1"),), 550
    ),
    "sisimai-lhost-postfix-05.eml": Expected(
        SOFT, "dsn", (("kijitora@example.org", "4.1.1"),), 450
    ),
    "sisimai-lhost-postfix-08.eml": Expected(SOFT, "dsn", (("kijitora@example.com", "4.4.1"),)),
    "sisimai-lhost-postfix-63.eml": Expected(
        SOFT, "dsn", (("neko@nyaaan.example.org", "5.2.2"),), 552
    ),
    "sisimai-lhost-postfix-64.eml": Expected(UNKNOWN, "none"),
    "sisimai-rhost-google-01.eml": Expected(
        HARD, "dsn", (("shironeko@example.ne.jp", "5.2.1"),), 550
    ),
    "sisimai-rhost-google-02.eml": Expected(
        HARD, "dsn", (("neko-nyaan@example.org", "5.1.1"),), 550
    ),
    # Exim
    "sisimai-lhost-exim-01.eml": Expected(
        HARD, "text", (("kijitora@example.ed.jp", "5.7.0"),), 550
    ),
    "sisimai-lhost-exim-29.eml": Expected(HARD, "dsn", (("kijitora@example.co.jp", "5.0.0"),), 550),
    "sisimai-lhost-exim-38.eml": Expected(SOFT, "text", (("kijitora@example.co.jp", None),), 450),
    "sisimai-lhost-exim-59.eml": Expected(
        HARD, "text", (("kijitora@icloud.example.com", "5.1.1"),), 550
    ),
    # qmail, Sendmail, OpenSMTPD, DragonFly
    "sisimai-lhost-qmail-01.eml": Expected(
        HARD, "text", (("kijitora@example.ne.jp", "5.5.0"),), 550
    ),
    "sisimai-lhost-qmail-02.eml": Expected(
        HARD,
        "text",
        (("filtered@example.jp", "5.2.1"), ("userunknown@example.jp", "5.1.1")),
        550,
    ),
    "sisimai-lhost-sendmail-01.eml": Expected(
        HARD, "dsn", (("userunknown@bouncehammer.jp", "5.1.1"),), 550
    ),
    "sisimai-lhost-sendmail-29.eml": Expected(
        SOFT, "dsn", (("this-local-part-does-not-exist-on-the-system@y-mobile.ne.jp", "4.5.0"),)
    ),
    "sisimai-lhost-v5sendmail-01.eml": Expected(SOFT, "text", ((None, None),), 421),
    "sisimai-lhost-opensmtpd-01.eml": Expected(
        HARD, "text", (("apdugoaidugoaidugoaeiudggadi@gmail.com", "5.1.1"),), 550
    ),
    "sisimai-lhost-opensmtpd-06.eml": Expected(
        SOFT, "dsn", (("nekochan@libsisimai.org", "4.4.7"),)
    ),
    "sisimai-lhost-dragonfly-12.eml": Expected(
        SOFT, "text", (("mailboxfull@libsisimai.net", "5.2.2"),), 552
    ),
    # Microsoft: Exchange 2003 and 2007, Office 365, Outlook.com / Hotmail
    "sisimai-lhost-exchange2003-01.eml": Expected(HARD, "text", (("kijitora@example.jp", None),)),
    "sisimai-lhost-exchange2007-01.eml": Expected(
        HARD, "dsn", (("mikeneko@example.co.jp", "5.1.1"),), 550
    ),
    "sisimai-lhost-office365-01.eml": Expected(
        HARD, "text", (("kijitora@example.com", "5.1.10"),), 550
    ),
    "sisimai-lhost-office365-02.eml": Expected(
        HARD, "text", (("kijitora@example.onmicrosoft.com", "5.1.1"),), 550
    ),
    "sisimai-lhost-office365-13.eml": Expected(
        HARD, "dsn", (("kijitora-nyaan@neko.kyoto.example.jp", "5.1.10"),), 550
    ),
    "sisimai-rhost-microsoft-01.eml": Expected(
        HARD, "dsn", (("kijitora@example.com", "5.7.606"),), 550
    ),
    "sisimai-lhost-outlook-06.eml": Expected(SOFT, "dsn", (("kijitora@example.com", "4.4.7"),)),
    # Others
    "sisimai-lhost-gmail-01.eml": Expected(
        HARD, "text", (("userunknown@example.jp", "5.1.1"),), 550
    ),
    "sisimai-lhost-zoho-04.eml": Expected(
        SOFT, "text", (("kijitora@6kaku.example.co.jp", None),), 421
    ),
    "sisimai-lhost-amazonses-01.eml": Expected(
        HARD, "dsn", (("shironeko@example.co.jp", "5.1.0"),), 550
    ),
    "sisimai-rfc3464-07.eml": Expected(SOFT, "dsn", (("kijitora@example.net", "4.4.0"),)),
    "sisimai-rfc3464-28.eml": Expected(
        UNKNOWN, "dsn", (("kijitora@neko.example.jp", "2.1.5"),), 250
    ),
    # Automatic replies and an ordinary message
    "sisimai-rfc3834-01.eml": Expected(AUTO, "auto_reply"),
    "sisimai-rfc3834-02.eml": Expected(AUTO, "auto_reply"),
    "sisimai-rfc3834-03.eml": Expected(AUTO, "auto_reply"),
    "sisimai-rfc3834-06.eml": Expected(AUTO, "auto_reply"),
    "sisimai-is-not-bounce-01.eml": Expected(UNKNOWN, "none"),
}


def corpus_files() -> list[str]:
    return sorted(p.name for p in CORPUS.glob("*.eml"))


def read(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def crlf(raw: bytes) -> bytes:
    """As the bounce arrives over SMTP."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.fixture(autouse=True)
def no_fallback(caplog: pytest.LogCaptureFixture) -> Any:
    """Every test here also proves that the catch-all in parse_bounce was not needed."""
    with caplog.at_level(logging.WARNING, logger="dispatcher.mail.bounces"):
        yield
    assert not [r for r in caplog.records if r.name == "dispatcher.mail.bounces"]


def test_every_corpus_file_has_an_expectation() -> None:
    assert corpus_files() == sorted(EXPECTED)
    for name in corpus_files():
        assert (CORPUS / name).stat().st_size < 50 * 1024, name
    assert (CORPUS / "README.md").is_file()


def assert_single_line(text: str | None) -> None:
    if text is None:
        return
    assert 0 < len(text) <= MAX_DIAGNOSTIC
    assert text == text.strip()
    assert "  " not in text
    assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Cs"} for ch in text), text


@pytest.mark.parametrize("line_ending", ["as stored", "CRLF"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus(name: str, line_ending: str) -> None:
    raw = read(name) if line_ending == "as stored" else crlf(read(name))
    expected = EXPECTED[name]
    bounce = parse_bounce(raw)
    assert bounce.classification is expected.classification
    assert bounce.source == expected.source
    assert tuple((r.address, r.status) for r in bounce.recipients) == expected.recipients
    if bounce.recipients:
        assert bounce.recipients[0].smtp_code == expected.smtp_code
    for recipient in bounce.recipients:
        assert_single_line(recipient.diagnostic)
        assert_single_line(recipient.remote_mta)
        if expected.classification in (HARD, SOFT):
            assert recipient.action in {"failed", "delayed", "error", "expired"}
    if expected.delivery is not None:
        assert bounce.return_path is not None
        assert read_return_path(bounce.return_path, SECRET, BOUNCE_DOMAIN) == expected.delivery


def test_dsn_details_are_kept() -> None:
    bounce = parse_bounce(read("own-office365-recipient-not-found.eml"))
    (recipient,) = bounce.recipients
    assert recipient.action == "failed"
    assert recipient.original_recipient == "erika.mustermann@contoso.example"
    assert recipient.diagnostic == (
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"
    )
    assert bounce.reporting_mta == "AM6PR04MB1234.eurprd04.prod.outlook.com"
    assert bounce.original_message_id == "<delivery-4711@portal.example.com>"
    assert bounce.status == "5.1.10"
    assert bounce.diagnostic == recipient.diagnostic
    assert bounce.addresses == ("erika.mustermann@contoso.example",)


def test_text_bounce_details_are_kept() -> None:
    bounce = parse_bounce(read("own-exim-550-text.eml"))
    (recipient,) = bounce.recipients
    assert recipient.remote_mta == "mx1.example.net"
    assert recipient.diagnostic is not None
    assert "550 5.1.1 <gibtsnicht@example.net>: Recipient address rejected" in recipient.diagnostic
    assert bounce.original_message_id == "<delivery-4715@portal.example.com>"


def test_exchange_reason_in_text_only_is_found() -> None:
    bounce = parse_bounce(read("sisimai-lhost-office365-01.eml"))
    assert bounce.diagnostic is not None
    assert "RESOLVER.ADR.RecipientNotFound" in bounce.diagnostic
    # The NDR also says Auto-Submitted: auto-replied; it is a bounce all the same.
    assert bounce.classification is HARD


def test_values_match_the_delivery_bounce_kinds() -> None:
    assert {c.value for c in Classification} == {"hard", "soft", "auto_reply", "unknown"}


# --------------------------------------------------------------------------- rules, on DSNs


def dsn(
    *blocks: str,
    per_message: str = "Reporting-MTA: dns; mx.example.net",
    report_type: str = "message/delivery-status",
    text: str = "Your message could not be delivered.",
) -> bytes:
    report = "\n\n".join([per_message, *blocks])
    return (
        "From: MAILER-DAEMON@mx.example.net\n"
        "To: bounces+4711-4t4fnzm76wtk2ufh@bounces.example.com\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BB"\n'
        "\n"
        "--BB\nContent-Type: text/plain; charset=utf-8\n\n"
        f"{text}\n"
        f"--BB\nContent-Type: {report_type}\n\n"
        f"{report}\n"
        "--BB--\n"
    ).encode()


def recipient(
    action: str | None = "failed",
    status: str | None = "5.1.1",
    diagnostic: str | None = None,
    address: str = "rfc822; kunde@example.net",
) -> str:
    lines = [f"Final-Recipient: {address}"]
    if action is not None:
        lines.append(f"Action: {action}")
    if status is not None:
        lines.append(f"Status: {status}")
    if diagnostic is not None:
        lines.append(f"Diagnostic-Code: {diagnostic}")
    return "\n".join(lines)


RULES = [
    # action, status, diagnostic -> classification, status read
    ("failed", "5.1.1", "smtp; 550 5.1.1 user unknown", HARD, "5.1.1"),
    ("delayed", "4.4.1", None, SOFT, "4.4.1"),
    # The server gave up on a temporary condition: nothing against the address.
    ("failed", "4.4.7", "smtp; 421 try later", SOFT, "4.4.7"),
    # Mailbox full is soft, even as a permanent 5.2.2.
    ("failed", "5.2.2", "smtp; 552 5.2.2 quota exceeded", SOFT, "5.2.2"),
    ("failed", None, "smtp; 552 mailbox full", SOFT, None),
    # "delayed" wins over a permanent-looking code: the server still tries.
    ("delayed", "5.1.1", None, SOFT, "5.1.1"),
    ("delivered", "2.0.0", "smtp; 250 ok", UNKNOWN, "2.0.0"),
    ("relayed", "2.0.0", None, UNKNOWN, "2.0.0"),
    ("expanded", "2.0.0", None, UNKNOWN, "2.0.0"),
    ("failed", None, "smtp; 550 no such user", HARD, None),
    ("failed", None, "smtp; 450 mailbox busy", SOFT, None),
    ("failed", None, None, HARD, None),
    ("error", None, None, HARD, None),  # OpenSMTPD
    ("expired", None, "smtp; Connection timed out", SOFT, None),  # SendGrid
    ("failed (bad destination mailbox address)", "5.1.1", None, HARD, "5.1.1"),
    ("FAILED", "5.01.001 (user unknown)", None, HARD, "5.1.1"),
    # A generic X.0.0 gives way to the remote server's specific code.
    ("failed", "5.0.0", "smtp; 550 5.1.1 <kunde@example.net>: user unknown", HARD, "5.1.1"),
    # Sendmail's 5.1.1 gives way to the reason the server quoted.
    ("failed", "5.1.1", "smtp; 550 5.7.1 IP address blacklisted", HARD, "5.7.1"),
    ("failed", "5.1.1", "smtp; 552 5.2.2 Over quota", SOFT, "5.2.2"),
    # Codes of another class in the diagnostic do not override Status.
    ("failed", "4.4.7", "smtp; 550 5.1.1 user unknown", SOFT, "4.4.7"),
    # An invalid Status is read from the diagnostic instead.
    ("failed", "9.9.9", "smtp; 550 5.1.1 user unknown", HARD, "5.1.1"),
    ("failed", "garbage", None, HARD, None),
    # An IP address holds no status code.
    ("failed", None, "smtp; host 10.5.2.2 said 550 no", HARD, None),
    (None, None, None, UNKNOWN, None),
]


@pytest.mark.parametrize(("action", "status", "diagnostic", "classification", "read"), RULES)
def test_classification_rules(
    action: str | None,
    status: str | None,
    diagnostic: str | None,
    classification: Classification,
    read: str | None,
) -> None:
    bounce = parse_bounce(dsn(recipient(action, status, diagnostic)))
    assert bounce.source == "dsn"
    (found,) = bounce.recipients
    assert found.address == "kunde@example.net"
    assert found.status == read
    assert found.classification is classification
    assert bounce.classification is classification


def test_reply_code_only_from_an_smtp_diagnostic() -> None:
    bounce = parse_bounce(dsn(recipient("failed", "5.0.0", "X-Unix; 255")))
    assert bounce.recipients[0].smtp_code is None
    assert bounce.recipients[0].diagnostic == "255"
    assert bounce.classification is HARD


def test_worst_news_decides_and_each_recipient_keeps_its_own() -> None:
    bounce = parse_bounce(
        dsn(
            recipient("delayed", "4.4.1", address="rfc822; a@example.net"),
            recipient("failed", "5.1.1", address="rfc822; b@example.net"),
            recipient("delivered", "2.0.0", address="rfc822; c@example.net"),
        )
    )
    assert bounce.classification is HARD
    assert [(r.address, r.classification) for r in bounce.recipients] == [
        ("a@example.net", SOFT),
        ("b@example.net", HARD),
        ("c@example.net", UNKNOWN),
    ]


@pytest.mark.parametrize(
    "final_recipient",
    [
        "rfc822; not an address",
        "rfc822; <>",
        "rfc822;",
        "",
        "x400; C=DE;A= ;P=EXAMPLE;O=Firma;S=Mustermann",
        "rfc822; kunde@",
        "rfc822; @example.net",
        "rfc822; kunde@example.net\x00evil",
        "rfc822; " + "a" * 300 + "@example.net",
        "utf-8; jörg@example.net",
    ],
)
def test_a_recipient_that_is_no_address_is_kept_without_one(final_recipient: str) -> None:
    bounce = parse_bounce(dsn(recipient("failed", "5.1.1", address=final_recipient)))
    assert bounce.source == "dsn"
    (found,) = bounce.recipients
    assert found.address is None
    assert found.classification is HARD
    # The return path still names the delivery.
    assert read_return_path(bounce.return_path or "", SECRET, BOUNCE_DOMAIN) == 4711


def test_original_recipient_stands_in_for_an_unusable_final_one() -> None:
    block = recipient("failed", "5.1.1", address="rfc822; ???") + (
        "\nOriginal-Recipient: rfc822;Kunde@Example.NET"
    )
    (found,) = parse_bounce(dsn(block)).recipients
    assert found.address == "Kunde@example.net"
    assert found.original_recipient == "Kunde@example.net"


def test_per_message_fields() -> None:
    bounce = parse_bounce(
        dsn(
            recipient() + "\nRemote-MTA: dns; mx1.example.net",
            per_message="Reporting-MTA: dns; relay.example.com\nOriginal-Envelope-Id: d-4711",
        )
    )
    assert bounce.reporting_mta == "relay.example.com"
    assert bounce.envelope_id == "d-4711"
    assert bounce.recipients[0].remote_mta == "mx1.example.net"


def test_diagnostics_become_one_clean_line() -> None:
    nasty = (
        "smtp; 550 5.1.1 user\x00 unknown\x1b[31m red\x7f \u202eevil\u202c\r\n"
        "\tcontinued\x85 here " + "x" * 2000
    )
    (found,) = parse_bounce(dsn(recipient("failed", "5.1.1", nasty))).recipients
    assert found.diagnostic is not None
    assert found.diagnostic.startswith("550 5.1.1 user unknown")
    assert "continued here" in found.diagnostic
    assert len(found.diagnostic) == MAX_DIAGNOSTIC
    assert_single_line(found.diagnostic)


def test_recipients_are_capped() -> None:
    blocks = [recipient(address=f"rfc822; r{i}@example.net") for i in range(MAX_RECIPIENTS * 3)]
    bounce = parse_bounce(dsn(*blocks))
    assert len(bounce.recipients) == MAX_RECIPIENTS
    assert bounce.classification is HARD


def test_global_delivery_status_is_read() -> None:
    raw = dsn(
        recipient(address="rfc822; kunde@example.net"),
        report_type="message/global-delivery-status",
    )
    (found,) = parse_bounce(raw).recipients
    assert (found.address, found.status) == ("kunde@example.net", "5.1.1")


def test_text_delivery_status_is_read() -> None:
    (found,) = parse_bounce(dsn(recipient(), report_type="text/delivery-status")).recipients
    assert (found.address, found.status) == ("kunde@example.net", "5.1.1")


def test_report_with_a_wrong_boundary_is_read_from_its_text() -> None:
    raw = dsn(recipient()).replace(b'boundary="BB"', b'boundary="XX"')
    (found,) = parse_bounce(raw).recipients
    assert (found.address, found.status) == ("kunde@example.net", "5.1.1")


def test_return_path_falls_back_to_the_bounce_receiver() -> None:
    bounce = parse_bounce(dsn(recipient()))
    assert bounce.return_path == "bounces+4711-4t4fnzm76wtk2ufh@bounces.example.com"


# --------------------------------------------------------------------------- automatic replies


def message(headers: dict[str, str], body: str = "Ich bin nicht im Büro.") -> bytes:
    head = {"From": "Erika <erika@example.net>", "To": "bounces+1@bounces.example.com", **headers}
    lines = [f"{k}: {v}" for k, v in head.items() if v]
    return ("\n".join(lines) + "\nContent-Type: text/plain; charset=utf-8\n\n" + body).encode()


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "auto-replied", "Subject": "Re: Ihre Rechnung"},
        {"Auto-Submitted": "auto-generated; owner-email=x@example.net", "Subject": "Hinweis"},
        {"Auto-Submitted": "Auto-Replied (vacation)", "Subject": "Re"},
        {"X-Autoreply": "yes", "Subject": "Re: Rechnung"},
        {"X-Autorespond": "Ihre Nachricht", "Subject": "Re: Rechnung"},
        {"Precedence": "auto_reply", "Subject": "Re: Rechnung"},
        {"X-Apple-Action": "VACATION", "Subject": "Re: Rechnung"},
        {"Subject": "Out of Office: Ihre Rechnung"},
        {"Subject": "Automatic reply: Ihre Rechnung"},
        {"Subject": "Automatische Antwort: Ihre Rechnung"},
        {"Subject": "Abwesenheitsnotiz: Ihre Rechnung"},
        {"Subject": "AW: Abwesenheitsnotiz"},
        {"Subject": "=?utf-8?q?Automatische_Antwort=3A_Ihre_Rechnung?="},
        {"Subject": "Réponse automatique : votre facture"},
        {"Subject": "Auto: Ihre Rechnung"},
        {"Subject": "Autoreply: Ihre Rechnung"},
    ],
)
def test_automatic_replies(headers: dict[str, str]) -> None:
    bounce = parse_bounce(message(headers))
    assert bounce.classification is AUTO
    assert bounce.recipients == ()


@pytest.mark.parametrize(
    "headers",
    [
        {"Auto-Submitted": "no", "Subject": "Frage zur Rechnung"},
        {"Subject": "Frage zur Rechnung"},
        {"Precedence": "bulk", "Subject": "Newsletter"},
        {"X-Autoreply": "no", "Subject": "Frage"},
    ],
)
def test_ordinary_mail_is_unknown(headers: dict[str, str]) -> None:
    assert parse_bounce(message(headers)).classification is UNKNOWN


def test_a_bounce_marked_auto_submitted_is_no_auto_reply() -> None:
    raw = message(
        {
            "From": "Mail Delivery System <MAILER-DAEMON@mx.example.net>",
            "Subject": "Undelivered Mail Returned to Sender",
            "Auto-Submitted": "auto-replied",
        },
        body="Something went wrong, and we cannot tell you what.",
    )
    bounce = parse_bounce(raw)
    assert bounce.classification is UNKNOWN
    assert bounce.source == "none"


# --------------------------------------------------------------------------- heuristics


def test_a_failing_detector_library_leaves_the_rest_working(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(msg: Any) -> Any:
        raise RuntimeError("detector bug")

    monkeypatch.setattr(bounces, "all_failures", broken)
    bounce = parse_bounce(read("own-exim-550-text.eml"))
    assert bounce.classification is HARD
    assert bounce.addresses == ("gibtsnicht@example.net",)


def test_our_own_sender_is_never_taken_for_the_recipient(monkeypatch: pytest.MonkeyPatch) -> None:
    # A heuristic that picks up the returned e-mail's sender must not get the
    # dispatcher's own sender address suppressed.
    found = frozenset(
        {
            b"rechnung@portal.example.com",
            b"bounces+4715-s7quqxd35mygy7wl@bounces.example.com",
            b"mailer-daemon@mail.example.org",
            b"gibtsnicht@example.net",
        }
    )
    monkeypatch.setattr(bounces, "all_failures", lambda msg: (frozenset(), found))
    bounce = parse_bounce(read("own-exim-550-text.eml"))
    assert bounce.addresses == ("gibtsnicht@example.net",)


def test_heuristic_addresses_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    junk = frozenset({b"not an address", b"\xff\xfe@x", b"a@b@c", b"<>"})
    monkeypatch.setattr(bounces, "all_failures", lambda msg: (junk, junk))
    raw = message({"Subject": "Hallo"}, body="nothing to see")
    assert parse_bounce(raw).recipients == ()


def test_an_unknown_report_quoting_one_code_is_read() -> None:
    raw = message(
        {"From": "postmaster@mx.example.net", "Subject": "Delivery failure"},
        body="Your mail to kunde@example.net failed.\n\nReason: 550 5.1.1 unknown user\n",
    )
    bounce = parse_bounce(raw)
    assert bounce.classification is HARD
    assert bounce.source == "text"
    assert (bounce.recipients[0].address, bounce.status) == ("kunde@example.net", "5.1.1")


def test_a_code_in_ordinary_mail_means_nothing() -> None:
    raw = message({"Subject": "Rückfrage"}, body="Kunde kunde@example.net: 550 5.1.1 laut IT.\n")
    assert parse_bounce(raw).classification is UNKNOWN


# --------------------------------------------------------------------------- hostile input


def nested(depth: int, inner: str = "x") -> bytes:
    head, tail = [], []
    for i in range(depth):
        head.append(f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n")
        tail.append(f"\n--b{i + 1}--\n")
    return (
        "Content-Type: multipart/mixed; boundary=b0\n\n"
        + "".join(head)
        + inner
        + "".join(reversed(tail))
        + "\n--b0--\n"
    ).encode()


def many_parts(count: int) -> bytes:
    part = "--b\nContent-Type: text/plain\n\nkunde@example.net 550 5.1.1\n"
    return ("Content-Type: multipart/mixed; boundary=b\n\n" + part * count + "--b--\n").encode()


def rng_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


BOUNCE_HEAD = b"From: MAILER-DAEMON@mx.example.net\nSubject: Undelivered Mail\n\n"
# The large ones are built when their test runs, not when the module is collected.
HOSTILE: dict[str, bytes | Callable[[], bytes]] = {
    "empty": b"",
    "whitespace": b" \r\n\t\r\n",
    "NUL bytes": b"\x00" * 1000,
    "one byte": b"\xff",
    "random 100": rng_bytes(100, 1),
    "random 64k": rng_bytes(65536, 2),
    "random 1M": lambda: rng_bytes(1024 * 1024, 3),
    "random with a DSN header": b"Content-Type: multipart/report; boundary=x\n\n"
    + rng_bytes(9000, 4),
    "headers only": b"From: a@b.example\nSubject: x",
    "no header/body separator": b"From: a@b.example\n" * 1000,
    "bare CR line endings": read("own-exim-550-text.eml").replace(b"\n", b"\r"),
    "CR/LF inside header values": b"Subject: a\rb\r\r\nFrom: x\r@y\n\rTo: \r\n\r\n\r\nbody",
    "line break in a DSN field": dsn(
        recipient(address="rfc822; kunde@example.net\r\nAction: delivered")
    ),
    "non-UTF-8 everywhere": "From: Jörg <jörg@bücher.example>\nSubject: Unzustellbar: Grüße\n\n"
    "Zustellung an kunde@example.net fehlgeschlagen: 550 5.1.1 Benutzer unbekannt\n".encode(
        "latin-1"
    ),
    "unknown charset": b"Content-Type: text/plain; charset=x-klingon\nSubject: failure notice\n"
    b"From: MAILER-DAEMON@x.example\n\n\xc3\x28 550 5.1.1 <kunde@example.net>\n",
    "broken base64": b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!!!====@@@",
    "broken quoted-printable": b"Content-Transfer-Encoding: quoted-printable\n\n=ZZ=\n=4",
    "broken encoded words": b"Subject: =?utf-8?b?!!!?= =?x-bad?q?=ff?=\nFrom: =?utf-8?q?=ff?=\n\nx",
    "malformed address headers": b'From: <<<@@@>>>, ;;; ,\nTo: "unterminated <x@y\n'
    b"Return-Path: <a@b@c>\nReply-To: (comment (nested (deeply\n\nbody",
    "multipart without boundary": b"Content-Type: multipart/report\n\n--\n--\nstuff",
    "boundary never closed": b"Content-Type: multipart/mixed; boundary=z\n\n--z\n\nx\n--z\n",
    "empty delivery-status": dsn(per_message=""),
    "delivery-status of garbage": dsn(per_message="\x00\x01\x02: \x03\n::::\n: :"),
    "delivery-status base64": dsn(recipient()).replace(
        b"Content-Type: message/delivery-status\n",
        b"Content-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n",
    ),
    "returned message of garbage": b"Content-Type: multipart/report; boundary=q\n\n--q\n"
    b"Content-Type: message/rfc822\n\n" + rng_bytes(5000, 5) + b"\n--q--\n",
    "nested 50": nested(50, recipient()),
    "nested 5000": lambda: nested(5000),
    "many parts 20000": lambda: many_parts(20000),
    "very long line": lambda: BOUNCE_HEAD + b"550 5.1.1 " + b"a" * 3_000_000,
    "long header": lambda: b"Subject: " + b"x" * 2_000_000 + b"\n\nbody",
    "many short lines": lambda: BOUNCE_HEAD + b"\n" * 4_000_000,
    "a report field folded a million times": lambda: dsn(
        recipient(diagnostic="smtp; 550" + "\n x" * 1_000_000),
        report_type="text/delivery-status",
    ),
    "many addresses": lambda: BOUNCE_HEAD + b"kunde@example.net 550 5.1.1\n" * 200_000,
    "angle brackets": lambda: (
        b"Content-Type: text/html\nFrom: postmaster@x.example\n\n" + b"<" * 5_000_000
    ),
    "just under the size limit": lambda: BOUNCE_HEAD + b"a" * (MAX_BOUNCE_BYTES - len(BOUNCE_HEAD)),
    "over the size limit": lambda: BOUNCE_HEAD + b"a" * MAX_BOUNCE_BYTES,
}
REFUSED = {
    "empty",
    "whitespace",
    "nested 5000",
    "many parts 20000",
    "long header",
    "over the size limit",
}


def hostile(name: str) -> bytes:
    value = HOSTILE[name]
    return value() if callable(value) else value


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_input_never_raises(name: str) -> None:
    raw = hostile(name)
    started = time.monotonic()
    bounce = parse_bounce(raw)
    elapsed = time.monotonic() - started
    assert isinstance(bounce, Bounce)
    assert bounce.classification in set(Classification)
    # Quadratic behaviour shows as minutes at these sizes; a few seconds is the norm.
    assert elapsed < 20, f"{name} took {elapsed:.1f}s"
    assert (bounce.source == "refused") == (name in REFUSED)
    for found in bounce.recipients:
        assert_single_line(found.diagnostic)
        assert found.address is None or found.address.isascii()


def test_a_repeated_report_field_counts_once() -> None:
    # A line break written into a field is a new line of the report: the sender of
    # a bounce writes all of it anyway. The first of two Action fields counts.
    bounce = parse_bounce(hostile("line break in a DSN field"))
    (found,) = bounce.recipients
    assert (found.address, found.action) == ("kunde@example.net", "delivered")
    assert bounce.classification is UNKNOWN


def test_non_utf8_bounce_is_read() -> None:
    bounce = parse_bounce(hostile("non-UTF-8 everywhere"))
    assert bounce.classification is HARD
    assert bounce.status == "5.1.1"


def wrapped(depth: int) -> bytes:
    entity = "Content-Type: message/delivery-status\n\nReporting-MTA: dns; x.example\n\n"
    entity += recipient()
    for i in range(depth):
        entity = f"Content-Type: multipart/mixed; boundary=w{i}\n\n--w{i}\n{entity}\n--w{i}--\n"
    return ("From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail\n" + entity).encode()


def test_a_report_inside_nesting_is_found_within_the_depth_limit() -> None:
    bounce = parse_bounce(wrapped(5))
    assert bounce.source == "dsn"
    assert bounce.addresses == ("kunde@example.net",)
    # Deeper than MAX_DEPTH the report part is not looked at; the answer is still an answer.
    deep = parse_bounce(wrapped(bounces.MAX_DEPTH + 5))
    assert deep.source != "dsn"
    assert deep.classification in set(Classification)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_bytes_like_input(kind: Any) -> None:
    raw = read("sisimai-lhost-postfix-04.eml")
    assert parse_bounce(kind(raw)) == parse_bounce(raw)


def test_text_instead_of_bytes_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    bogus: Any = "From: MAILER-DAEMON@x\n\n550 5.1.1"
    bounce = parse_bounce(bogus)
    assert bounce.source == "refused"
    assert bounce.classification is UNKNOWN
    # The catch-all answered, and said so in the log.
    assert any("could not be read" in r.getMessage() for r in caplog.records)
    caplog.clear()


def test_the_catch_all_answers_for_any_bug(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def bug(raw: bytes) -> Bounce:
        raise RecursionError("somewhere deep")

    monkeypatch.setattr(bounces, "_parse", bug)
    bounce = parse_bounce(read("sisimai-lhost-postfix-04.eml"))
    assert (bounce.classification, bounce.source) == (UNKNOWN, "refused")
    caplog.clear()
