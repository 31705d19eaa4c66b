"""The SMTP paths of MAIL FROM and RCPT TO: what smtplib would send, without its parser."""

from __future__ import annotations

import smtplib

import pytest

from dispatcher.smtp.transport import smtp_path


@pytest.mark.parametrize(
    "address",
    [
        "kim@example.com",
        "bounces+12345-abcdefghijklmnop@bounces.example.com",
        "first.last+tag@sub.example.co.uk",
        "ü@exämple.de",
        "<kim@example.com>",
        "Kim <kim@example.com>",
        '"a b"@example.com',
        "kim@example.com\r\nRCPT TO:<x@example.com>",
        "",
    ],
)
def test_the_path_is_what_smtplib_would_send(address: str) -> None:
    assert smtp_path(address) == smtplib.quoteaddr(address)


def test_a_bare_address_only_gets_its_brackets() -> None:
    assert smtp_path("bounces+1-abc@b.example.com") == "<bounces+1-abc@b.example.com>"
