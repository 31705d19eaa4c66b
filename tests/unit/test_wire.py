"""The message writer: the same bytes as compat32's generator, written directly.

``wire.to_bytes`` writes messages of ``render.build_message``'s shape itself
and hands anything else to the generator. Every case here is written both
ways and must come out byte for byte the same, so the fast path can never
change what goes on the wire or what DKIM signs.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from dispatcher.domain.addresses import Mailbox
from dispatcher.mail import wire
from dispatcher.mail.render import RenderedEmail, build_message
from tests.unit.test_headers import NAMES, SUBJECTS

DATE = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
TEXTS = [
    "Hallo,\n\nbitte klicken Sie https://portal.example.com/reset?t=abc=def\n\nGrüße\n",
    "Zeile mit Leerzeichen am Ende   \nTab\tam Ende\t\n" + "ä" * 200 + "\n",
    "=_ und =?utf-8?q?x?= und --=_boundary-look-alike\n.\n..\nFrom me\n",
    "kein Zeilenende am Schluss",
    "",
    "Emoji 😀 und Steuerzeichen-freie Zeilen\n" * 50,
]


def generator_bytes(message: Message) -> bytes:
    return message.as_bytes(policy=wire.WIRE)


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("name", NAMES[:4])
def test_built_messages_are_written_as_the_generator_writes_them(subject: str, name: str) -> None:
    for number, text in enumerate(TEXTS):
        rendered = RenderedEmail(subject=subject, text=text, html=f"<p>{text}</p>", locale="de")
        message = build_message(
            rendered,
            Mailbox("portal@example.com", name),
            Mailbox("kim.mueller@example.com", "Kim Müller"),
            f"<{number}{'a' * 40}@example.com>",
            DATE,
        )
        fast = wire.to_bytes(message)
        assert fast == generator_bytes(message)
        # And it is a well-formed message whose parts read back exactly.
        parsed = email.message_from_bytes(fast, policy=email.policy.default)
        plain = parsed.get_body(("plain",))
        assert plain is not None
        assert plain.get_content().replace("\r\n", "\n") == text


def test_the_boundary_comes_from_the_message_id_and_never_occurs_in_the_parts() -> None:
    rendered = RenderedEmail(subject="s", text=TEXTS[2], html=TEXTS[2], locale="de")
    first, second = (
        build_message(rendered, Mailbox("a@example.com"), Mailbox("b@example.com"), mid, DATE)
        for mid in ("<one@example.com>", "<two@example.com>")
    )
    assert first.get_boundary() != second.get_boundary()
    again = build_message(
        rendered, Mailbox("a@example.com"), Mailbox("b@example.com"), "<one@example.com>", DATE
    )
    assert wire.to_bytes(again) == wire.to_bytes(first)
    boundary = first.get_boundary()
    assert boundary is not None
    body = wire.to_bytes(first).decode("ascii")
    # Two parts: the opening line, one separator and the closing line.
    assert body.count(f"--{boundary}") == 3


def test_headers_the_fast_path_cannot_write_go_through_the_generator() -> None:
    message = Message()
    message["Content-Type"] = "text/plain"
    message["X-Long"] = "word " * 30 + "end"  # needs folding
    message["X-Spaces"] = "two  spaces"
    message["X-Umlaut"] = "Grüße"
    message.set_payload("body\r\nwith CRLF\n")
    assert wire.to_bytes(message) == generator_bytes(message)


def test_other_multiparts_are_written_by_the_generator() -> None:
    message = MIMEMultipart("mixed")  # no boundary yet: the generator picks one
    message.attach(MIMEText("Hallo Welt", "plain", "utf-8"))
    message.preamble = "This is a MIME message."
    written = wire.to_bytes(message)
    assert written.startswith(b"Content-Type: multipart/mixed")
    assert b"This is a MIME message.\r\n" in written
    assert message.get_boundary() is not None
    assert written == generator_bytes(message)
