"""Reading the local mail sink's messages back, for the admin API and the web UI.

The sink (``dispatcher.smtp.sink``) writes ``<dir>/<name>.eml`` files and an
index. Only names listed in that index are ever opened, and only when they are
plain file names inside the directory: a request can never choose a path.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

from dispatcher.errors import DispatcherError
from dispatcher.smtp.sink import read_index

# What the sink names its files (``20261127T093000-4242-000001.eml``), with
# room for other sinks' names; never a separator, never a leading dot.
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.eml")
# The sink accepts at most 2 MB per message; anything far larger is not its.
MAX_FILE_BYTES = 16 * 1024 * 1024


class NoMailbox(DispatcherError):
    def __init__(self) -> None:
        super().__init__(
            "there is no local mail sink: DISPATCHER_MAILSINK_DIR is not set (dispatcher up "
            "sets it when no SMTP server is configured); read the mail on your SMTP server"
        )


class UnknownMessage(DispatcherError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"the mail sink has no message {name!r}; list the messages with GET /v1/mailbox"
        )


@dataclass(frozen=True)
class MailSummary:
    """One stored message as the sink's index describes it."""

    file: str
    received_at: datetime | None
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message_id: str | None
    subject: str
    sender: str
    to: str


@dataclass(frozen=True)
class MailPage:
    items: tuple[MailSummary, ...]
    total: int


@dataclass(frozen=True)
class MailMessage:
    """One stored message, parsed: its main headers, its text part and its HTML part."""

    summary: MailSummary
    sender: str | None
    to: str | None
    cc: str | None
    subject: str | None
    date: str | None
    message_id: str | None
    text: str | None
    html: str | None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _summary(entry: dict[str, Any]) -> MailSummary | None:
    name = entry.get("file")
    if not isinstance(name, str) or FILE_NAME.fullmatch(name) is None:
        return None
    received = entry.get("received_at")
    recipients = entry.get("rcpt_tos")
    message_id = entry.get("message_id")
    return MailSummary(
        file=name,
        received_at=(
            datetime.fromtimestamp(received, UTC)
            if isinstance(received, int | float) and 0 <= received < 32_503_680_000
            else None
        ),
        mail_from=_text(entry.get("mail_from")),
        rcpt_tos=tuple(r for r in recipients if isinstance(r, str))
        if isinstance(recipients, list)
        else (),
        message_id=message_id if isinstance(message_id, str) else None,
        subject=_text(entry.get("subject")),
        sender=_text(entry.get("from")),
        to=_text(entry.get("to")),
    )


def _summaries(directory: Path) -> list[MailSummary]:
    """Every message the index lists, newest first."""
    found = (_summary(entry) for entry in reversed(read_index(directory)))
    return [summary for summary in found if summary is not None]


def list_messages(directory: Path | None, limit: int = 50, offset: int = 0) -> MailPage:
    """The sink's messages, newest first, one page of them."""
    if directory is None:
        raise NoMailbox()
    summaries = _summaries(directory)
    return MailPage(tuple(summaries[offset : offset + limit]), len(summaries))


def read_message(directory: Path | None, name: str) -> MailMessage:
    """One message named in the index, parsed; ``UnknownMessage`` for any other name."""
    if directory is None:
        raise NoMailbox()
    summary = next((s for s in _summaries(directory) if s.file == name), None)
    if summary is None:
        raise UnknownMessage(name)
    # The name passed FILE_NAME, so it has no separator; resolving checks once
    # more that a symbolic link does not lead out of the sink's directory.
    base = directory.resolve()
    path = (base / summary.file).resolve()
    if path.parent != base:
        raise UnknownMessage(name)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UnknownMessage(name)
        content = path.read_bytes()
    except OSError:
        raise UnknownMessage(name) from None
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    return MailMessage(
        summary=summary,
        sender=_header(parsed, "From"),
        to=_header(parsed, "To"),
        cc=_header(parsed, "Cc"),
        subject=_header(parsed, "Subject"),
        date=_header(parsed, "Date"),
        message_id=_header(parsed, "Message-ID"),
        text=_part(parsed, "plain"),
        html=_part(parsed, "html"),
    )


def _header(message: Message, name: str) -> str | None:
    raw = message.get(name)
    if raw is None:
        return None
    try:
        return str(raw)
    except (ValueError, LookupError, IndexError, TypeError, AttributeError):
        # A header too malformed for the modern parser: show it undecoded.
        return next(
            (str(value) for key, value in message.raw_items() if key.lower() == name.lower()),
            None,
        )


def _part(message: Message, subtype: str) -> str | None:
    if not isinstance(message, EmailMessage):
        return None
    try:
        part = message.get_body(preferencelist=(subtype,))
    except (ValueError, LookupError, IndexError, TypeError, AttributeError):
        return None
    if part is None:
        return None
    try:
        content = part.get_content()
    except (ValueError, LookupError, AssertionError, TypeError, AttributeError):
        content = None
    if isinstance(content, str):
        return content
    # An unknown charset or a broken transfer encoding: decode what is there.
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")
