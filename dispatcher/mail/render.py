"""Rendering: resolved texts and an event context become subject, text and HTML.

The body is written as plain text. The HTML part is derived from the rendered
text, never rendered from the template itself: every character the author or
the event supplied is escaped, blank lines become paragraphs, line breaks
become <br>, and http(s) URLs become links.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email import quoprimime
from email.message import Message
from email.utils import format_datetime
from importlib import resources
from typing import Any

from markupsafe import Markup, escape

from dispatcher.domain.addresses import Mailbox
from dispatcher.domain.texts import ResolvedText
from dispatcher.domain.textsafety import first_forbidden
from dispatcher.errors import TemplateProblem
from dispatcher.mail import headers
from dispatcher.mail.headers import Folded
from dispatcher.mail.templating import HTML_ENV, compile_text, render

MAX_SUBJECT_CHARS = 255
_URL = re.compile(r"https?://[^\s<>\"'`]+[^\s<>\"'`.,;:!?)\]}]")
_LAYOUT = HTML_ENV.from_string(
    resources.files("dispatcher.mail").joinpath("templates/layout.html").read_text("utf-8")
)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    locale: str


class RenderFailed(TemplateProblem):
    """A template failed at render time; ``field`` says which one."""

    def __init__(self, field: str, problem: TemplateProblem) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


def clean_subject(rendered: str) -> str:
    """Fold the rendered subject onto one line and bound its length."""
    subject = " ".join(rendered.split())
    if len(subject) > MAX_SUBJECT_CHARS:
        subject = subject[: MAX_SUBJECT_CHARS - 1].rstrip() + "…"
    return subject


def _linkify_line(line: str) -> Markup:
    out: list[str] = []
    position = 0
    for match in _URL.finditer(line):
        out.append(escape(line[position : match.start()]))
        url = escape(match.group(0))
        out.append(Markup('<a href="{0}" style="color:#0b5cad;">{0}</a>').format(url))
        position = match.end()
    out.append(escape(line[position:]))
    return Markup("").join(out)


def text_to_html(text: str) -> Markup:
    """Paragraphs and links for the HTML part; everything else is escaped."""
    # Plain string joins of escaped pieces: Markup.format and Markup.join per
    # line cost as much as rendering the template itself.
    paragraphs = [part for part in re.split(r"\n[ \t]*\n", text.strip()) if part.strip()]
    html = []
    for part in paragraphs:
        lines = [
            _linkify_line(line) if "://" in line else escape(line)
            for line in part.strip("\n").split("\n")
        ]
        html.append('<p style="margin:0 0 1em 0;">' + "<br>\n".join(lines) + "</p>")
    # Every piece above went through escape() or _linkify_line, which escapes.
    return Markup("\n".join(html))  # noqa: S704


def render_email(text: ResolvedText, context: Mapping[str, Any]) -> RenderedEmail:
    """Render one e-mail; raise ``RenderFailed`` naming the failing field."""
    try:
        subject = clean_subject(render(compile_text(text.subject), context, locale=text.locale))
    except TemplateProblem as exc:
        raise RenderFailed("subject", exc) from None
    try:
        body = render(compile_text(text.body), context, locale=text.locale).strip("\n")
    except TemplateProblem as exc:
        raise RenderFailed("body", exc) from None
    group = context.get("group") or {}
    html = _LAYOUT.render(
        lang=text.locale,
        subject=subject,
        group_name=group.get("name", ""),
        content=text_to_html(body),
    )
    return RenderedEmail(subject=subject, text=body + "\n", html=html, locale=text.locale)


def message_id_for(event_id: str, kind: str, recipient: str, domain: str) -> str:
    """A Message-ID derived from the delivery's unique key.

    Every attempt of one delivery carries the same Message-ID, so a copy sent
    again after an uncertain outcome can be recognised as the same e-mail.
    """
    digest = hashlib.sha256(f"{event_id}\x00{kind}\x00{recipient}".encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


# Quoted-printable keeps German text readable in the raw message. The message
# is built from plain compat32 ``Message`` objects with every header written
# out: the EmailMessage API parses every value again through its header
# registry, and even MIMEText re-parses its own Content-Type to set the
# charset; together that was half the cost of an e-mail. The headers that
# carry people's text are folded by dispatcher.mail.headers.
_TEXT_PART_HEADERS = (
    ("MIME-Version", "1.0"),
    ("Content-Transfer-Encoding", "quoted-printable"),
)


def _boundary(message_id: str) -> str:
    # "=_" never occurs in a quoted-printable body ("=" is always followed
    # by two hex digits or a line end), so the boundary cannot collide with
    # the parts and needs no search through them (the generator's own search
    # compiles a new regular expression for every message). Derived from the
    # Message-ID, every attempt of a delivery has the same structure.
    return "=_" + hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:28]


def _text_part(subtype: str, text: str) -> Message:
    part = Message()
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    for name, value in _TEXT_PART_HEADERS:
        part[name] = value
    # quoprimime encodes code points below 256 as bytes; UTF-8 read as
    # Latin-1 hands it the bytes (as email.charset.Charset.body_encode does).
    part.set_payload(quoprimime.body_encode(text.encode("utf-8").decode("latin-1")))
    return part


def _header_safe(name: str, value: str) -> str:
    # Every value was validated long before; this is the last line of defence
    # against a header gaining a line or carrying what UTF-8 cannot encode. A
    # TemplateProblem makes the delivery dead with this reason, never retried.
    if "\r" in value or "\n" in value:
        raise TemplateProblem(f"the {name} header would contain a line break; it cannot be sent")
    bad = first_forbidden(value)
    if bad:
        raise TemplateProblem(f"the {name} header contains the character {bad}; it cannot be sent")
    return value


def _part_safe(name: str, value: str) -> str:
    bad = first_forbidden(value, allow_newlines=True)
    if bad:
        raise TemplateProblem(f"the {name} contains the character {bad}; it cannot be sent")
    return value


def _address(header: str, mailbox: Mailbox) -> Folded:
    name = mailbox.display_name or ""
    if name:
        _header_safe("display name", name)
    return headers.mailbox(header, name, _header_safe(header, mailbox.address))


def build_message(
    email: RenderedEmail,
    sender: Mailbox,
    recipient: Mailbox,
    message_id: str,
    date: datetime,
) -> Message:
    """A multipart/alternative message: a text part and an HTML part.

    Raise ``TemplateProblem`` if a value cannot be sent as it is (a control
    character or a lone surrogate that validation did not stop).
    """
    message = Message()
    message["Content-Type"] = f'multipart/alternative; boundary="{_boundary(message_id)}"'
    message["MIME-Version"] = "1.0"
    # Folded values are written as they are (dispatcher.mail.headers: every
    # encoded-word within 75 characters, every line within 78); the stub
    # wants str.
    message["From"] = _address("From", sender)  # type: ignore[assignment]
    message["To"] = _address("To", recipient)  # type: ignore[assignment]
    subject = _header_safe("Subject", email.subject)
    message["Subject"] = headers.unstructured("Subject", subject)  # type: ignore[assignment]
    message["Date"] = format_datetime(date)
    message["Message-ID"] = _header_safe("Message-ID", message_id)
    message["Content-Language"] = _header_safe("Content-Language", email.locale)
    # RFC 3834: automatic replies (out-of-office notices) should not answer.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message.attach(_text_part("plain", _part_safe("text part", email.text)))
    message.attach(_text_part("html", _part_safe("HTML part", email.html)))
    return message
