"""Checks for characters that must never reach a header or a short field."""

from __future__ import annotations

import unicodedata

# Bidirectional controls let a string display differently from what it says
# (the "Trojan Source" family), so short fields refuse them outright.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


def describe(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def first_forbidden(value: str, *, allow_newlines: bool = False) -> str | None:
    """Describe the first control, format or line-breaking character, or None.

    Line feeds and tabs are allowed in bodies (``allow_newlines``); everything
    else in Unicode categories Cc, Cf, Zl and Zp is refused, which covers CR,
    LF, NUL, zero-width characters and bidirectional overrides.
    """
    for char in value:
        if allow_newlines and char in "\n\t":
            continue
        if char in _BIDI_CONTROLS or unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}:
            return describe(char)
    return None


def single_line_problem(value: str) -> str | None:
    """Explain why ``value`` cannot go into a header, or return None."""
    if "\r" in value or "\n" in value:
        return "must be a single line; remove the line break"
    bad = first_forbidden(value)
    if bad:
        return f"contains the invisible or control character {bad}; remove it"
    return None
