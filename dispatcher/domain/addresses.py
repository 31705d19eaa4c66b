"""E-mail address policy, shared by settings and events.

Syntax is checked by ``email-validator`` without DNS look-ups. Internationalised
domains are accepted and sent in their ASCII (IDNA) form. Non-ASCII characters
before the @ need SMTPUTF8 end to end, which most relays in front of billing
systems do not offer, so they are refused with a clear message.
"""

from __future__ import annotations

import functools
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
            value,
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


def _explain(message: str, allow_display_name: bool) -> str:
    message = message.rstrip(".")
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
