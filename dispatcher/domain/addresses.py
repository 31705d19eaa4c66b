"""E-mail address policy, shared by settings and events.

Syntax is checked by ``email-validator`` without DNS look-ups. Internationalised
domains are accepted and sent in their ASCII (IDNA) form. Non-ASCII characters
before the @ need SMTPUTF8 end to end, which most relays in front of billing
systems do not offer, so they are refused with a clear message.

Display names may hold any Unicode letters without quotes, as people type them
(``Großhandel Portal <noreply@example.com>``): RFC 6532 counts every non-ASCII
character as ``atext``, and the name is encoded for the header anyway (RFC 2047,
``dispatcher.mail.headers``). ASCII specials (``.``, ``,``, ``@``, ...) still need
the quotes RFC 5322 asks for; control, format and bidirectional characters are
refused quoted or not.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from email.headerregistry import Address

from email_validator import EmailNotValidError, validate_email

from dispatcher.domain.textsafety import first_forbidden, looks_encoded

MAX_ADDRESS_LENGTH = 254
MAX_DISPLAY_NAME_LENGTH = 200


@dataclass(frozen=True)
class Mailbox:
    """A validated address, ready for an SMTP envelope and a header."""

    address: str  # ASCII form, for the SMTP envelope
    display_name: str | None = None

    def header(self) -> str:
        """Format for From or To; the library quotes and encodes the name."""
        local, _, domain = self.address.rpartition("@")
        return str(Address(display_name=self.display_name or "", username=local, domain=domain))


class AddressProblem(ValueError):
    """Raised with a message that says how to write the address instead."""


@functools.lru_cache(maxsize=4096)
def parse_mailbox(value: str, *, allow_display_name: bool = False) -> Mailbox:
    """Validate ``value`` and return it as a ``Mailbox``; raise ``AddressProblem``.

    Cached: the same addresses come back (senders always, recipients often),
    and the result is immutable.
    """
    if not value or not value.strip():
        raise AddressProblem("must not be empty; enter an address such as name@example.com")
    if value != value.strip():
        raise AddressProblem("has spaces at the start or end; remove them")
    bad = first_forbidden(value)
    if bad:
        raise AddressProblem(f"contains the control character {bad}; remove it")
    if len(value) > MAX_ADDRESS_LENGTH + (MAX_DISPLAY_NAME_LENGTH + 3 if allow_display_name else 0):
        raise AddressProblem(f"is too long; an address has at most {MAX_ADDRESS_LENGTH} characters")
    if not allow_display_name and "<" in value:
        raise AddressProblem(
            "must be a bare address such as name@example.com, without a display name"
        )
    try:
        checked = validate_email(
            _quote_unicode_display_name(value) if allow_display_name else value,
            check_deliverability=False,
            allow_display_name=allow_display_name,
            allow_smtputf8=False,
        )
    except EmailNotValidError as exc:
        raise AddressProblem(_explain(str(exc), allow_display_name)) from None
    if len(checked.local_part) > 64:
        raise AddressProblem(
            "has more than 64 characters before the @ (RFC 5321); use a shorter address"
        )
    name = checked.display_name or None
    if name is not None and len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise AddressProblem(f"display name is longer than {MAX_DISPLAY_NAME_LENGTH} characters")
    if name is not None and looks_encoded(name):
        # A mail program would decode it into whatever it spells (line
        # breaks, other addresses); what is sent is encoded for it anyway.
        raise AddressProblem(
            "display name contains '=?', which mail programs read as an encoded-word "
            "(RFC 2047); write the name as plain text, umlauts are encoded when sent"
        )
    return Mailbox(address=checked.ascii_email or checked.normalized, display_name=name)


# RFC 5322 atext and the space: what an unquoted display name may hold in ASCII.
_ASCII_ATEXT = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]")


def _quote_unicode_display_name(value: str) -> str:
    """``Name <addr>`` with a non-ASCII unquoted name as ``"Name" <addr>``.

    email-validator allows only ASCII atext in an unquoted name; RFC 6532
    extends atext with every non-ASCII character. Quoting such a name hands
    it to email-validator in the form it checks fully (unsafe characters,
    a combining mark at the start). Anything else is left as it is.
    """
    if value.startswith('"'):
        return value
    name, bracket, rest = value.partition("<")
    if not bracket or "@" in name or '"' in name or name.isascii():
        return value
    name = name.rstrip()
    specials = sorted({char for char in name if char.isascii() and not _ASCII_ATEXT.match(char)})
    if specials:
        shown = ", ".join(repr(char) for char in specials)
        raise AddressProblem(
            _explain(f"The display name contains invalid characters when not quoted: {shown}", True)
        )
    return f'"{name}" <{rest}'


def _explain(message: str, allow_display_name: bool) -> str:
    message = message.rstrip(".")
    if "invalid characters when not quoted: " in message:
        shown = message.rpartition(": ")[2]
        return (
            f"display name contains {shown}, which needs quotes around the name; "
            'write it as "Müller, Hans" <name@example.com>'
        )
    if message.startswith("Internationalized characters before the @-sign"):
        return (
            "has non-ASCII characters before the @, which needs SMTPUTF8; "
            "use an ASCII address (internationalised domains after the @ are fine)"
        )
    example = (
        '"Name <name@example.com>" or name@example.com'
        if allow_display_name
        else ("name@example.com")
    )
    return f"is not a valid e-mail address ({message}); write it as {example}"
