"""Checks for characters that must never reach a header or a short field."""

from __future__ import annotations

import unicodedata

# Bidirectional controls let a string display differently from what it says
# (the "Trojan Source" family), so short fields refuse them outright.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
# Control, format, line and paragraph separators, and surrogates: a lone
# surrogate (JSON's "\ud800", a template's '\ud800') is no character at all
# and cannot be written as UTF-8, so no header, body or database takes it.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# An RFC 2047 encoded-word ("=?utf-8?q?...?=") starts so; mail programs
# decode one wherever they find it, even where the RFC does not allow it.
ENCODED_WORD_START = "=?"


def describe(char: str) -> str:
    if unicodedata.category(char) == "Cs":
        return f"U+{ord(char):04X} (a lone surrogate, which is no character)"
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def first_forbidden(value: str, *, allow_newlines: bool = False) -> str | None:
    """Describe the first control, format or line-breaking character, or None.

    Line feeds and tabs are allowed in bodies (``allow_newlines``); everything
    else in Unicode categories Cc, Cf, Zl, Zp and Cs is refused, which covers
    CR, LF, NUL, zero-width characters, bidirectional overrides and lone
    surrogates.
    """
    # Printable text, by far the common case, has none of them: checked in C.
    visible = value.replace("\n", "").replace("\t", "") if allow_newlines else value
    if visible.isprintable():
        return None
    for char in value:
        if allow_newlines and char in "\n\t":
            continue
        if char in _BIDI_CONTROLS or unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
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


def looks_encoded(value: str) -> bool:
    """Whether a mail program could take part of ``value`` for an RFC 2047 encoded-word.

    Such text must reach a header encoded as a whole, so that the reader
    decodes it once, back to the literal text, and never what it spells.
    """
    return ENCODED_WORD_START in value
