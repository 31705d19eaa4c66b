"""Reading headers as RFC 2047 says, and checking their limits.

Python's modern parser (``email.policy.default``) keeps the white space
between two adjacent encoded-words of a display name, which RFC 2047 §6.2
says to ignore; a long name split into several encoded-words (each at most
75 characters) then reads back with a space inside. Mail programs follow the
RFC; these helpers decode as they do.
"""

from __future__ import annotations

import email
import re
from email.header import decode_header, make_header

ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?\s]*)\?=")
MAX_LINE = 78
MAX_ENCODED_WORD = 75


def head_of(raw: bytes) -> str:
    """The header section of a message, as text (it is ASCII)."""
    return re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0].decode("ascii")


def raw_header(raw: bytes, name: str) -> str:
    """One header's value as sent, unfolded."""
    value = email.message_from_bytes(raw)[name]
    assert isinstance(value, str), f"no {name} header"
    return re.sub(r"\r?\n(?=[ \t])", "", value)


def decoded(value: str) -> str:
    """An unstructured value (or a phrase) decoded per RFC 2047."""
    return str(make_header(decode_header(value)))


def mailbox_of(raw: bytes, name: str) -> tuple[str, str]:
    """(display name, address) of a From or To header, decoded per RFC 2047."""
    value = raw_header(raw, name)
    if not value.endswith(">"):
        return "", value
    phrase, _, address = value.rpartition("<")
    return decoded(phrase.rstrip()), address[:-1]


def limit_problems(raw: bytes) -> list[str]:
    """Every header line over 78 characters and every encoded-word over 75."""
    problems = []
    for line in re.split(r"\r?\n", head_of(raw)):
        if len(line) > MAX_LINE:
            problems.append(f"line of {len(line)}: {line}")
        for match in ENCODED_WORD.finditer(line):
            if len(match.group(0)) > MAX_ENCODED_WORD:
                problems.append(f"encoded-word of {len(match.group(0))}: {match.group(0)}")
    return problems
