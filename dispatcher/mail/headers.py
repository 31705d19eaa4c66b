"""Header values folded and encoded within RFC 5322 and RFC 2047's limits.

Every encoded-word is at most 75 characters (RFC 2047 §2) and every header
line at most 78 (RFC 5322 §2.1.1). Neither of Python's folders keeps both:
compat32's ``Header`` writes encoded-words of 79 characters and lines of 88,
and the modern policy (``email.policy.SMTP``, Python 3.11) writes
encoded-words of 76 and leaves text that looks like an encoded-word ("=?")
unencoded, which a reader would decode. So the values are folded here, once,
into a ``Folded`` value that compat32's generator writes as it is (it is
"Header-like": compat32 calls its ``encode``), which keeps the fast compat32
MIME classes (``render.build_message``) and the bytes DKIM signs stable.

Rules:

- Unstructured text (Subject) that is ASCII, holds no "=?" and whose words fit
  a line is folded at spaces and stays readable. Anything else is written as
  a run of UTF-8 Q encoded-words, whole: every character, spaces included,
  sits inside one, and no character's bytes are split across two (RFC 2047
  §5). Whitespace between adjacent encoded-words is ignored by readers, so
  the text reads back exactly.
- A mailbox (From, To) is ``phrase <address>``; a phrase that is not plain
  ASCII, holds "=?", or does not fit a line is encoded the same way with the
  characters RFC 2047 §5 (3) allows in a phrase, and the address never
  splits. An address longer than a line (over 76 characters) is the one
  thing that can exceed 78; RFC 5322 allows it (998), no folding can help.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable

from dispatcher.domain.textsafety import looks_encoded

MAX_LINE = 78
MAX_ENCODED_WORD = 75
_START = "=?utf-8?q?"
_END = "?="
_OVERHEAD = len(_START) + len(_END)
# One character's encoded form is at most 12 ("=F0=9F=98=80"); a line with
# less room than an encoded-word holding one character starts a new line.
_MIN_WORD = _OVERHEAD + 12
# RFC 2047 §5 (1) and (3): the characters that may stay as they are.
_TEXT_SAFE = frozenset(string.ascii_letters + string.digits + "!\"#$%&'()*+,-./:;<>@[\\]^`{|}~")
_PHRASE_SAFE = frozenset(string.ascii_letters + string.digits + "!*+-/")
# RFC 5322 specials: an ASCII display name holding one is quoted.
_SPECIALS = frozenset('()<>[]:;@\\,."')


class Folded:
    """A header value folded into lines; compat32 writes it as it is.

    ``str()`` gives the value as a person reads it (like ``email.header.Header``),
    and it equals that text.
    """

    def __init__(self, lines: Iterable[str], text: str) -> None:
        self.lines = tuple(lines)
        self.text = text

    def encode(
        self, splitchars: str = ";, \t", maxlinelen: int | None = None, linesep: str = "\n"
    ) -> str:
        # The signature of Header.encode, which compat32's generator calls.
        return (linesep + " ").join(self.lines)

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Folded):
            return self.lines == other.lines
        if isinstance(other, str):
            return self.text == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Folded({self.lines!r})"


def _encode_char(char: str, safe: frozenset[str]) -> str:
    if char == " ":
        return "_"
    if char in safe:
        return char
    return "".join(f"={byte:02X}" for byte in char.encode("utf-8"))


class _Lines:
    """Words joined by single spaces into lines of at most ``MAX_LINE``."""

    def __init__(self, prefix_length: int) -> None:
        self.lines = [""]
        self.used = prefix_length

    def room(self) -> int:
        """Characters the next word may have on the current line."""
        return MAX_LINE - self.used - (1 if self.lines[-1] else 0)

    def add(self, word: str) -> None:
        if self.lines[-1] and len(word) > self.room():
            self.lines.append("")
            self.used = 1
        if self.lines[-1]:
            self.lines[-1] += " "
            self.used += 1
        self.lines[-1] += word
        self.used += len(word)

    def add_encoded(self, text: str, safe: frozenset[str]) -> None:
        """``text`` as encoded-words, each filling what its line has left.

        A word ends after a space where it can (the space stays inside it,
        as "_"), else after any character; never inside a character's bytes.
        """
        pieces = [_encode_char(char, safe) for char in text]
        start = 0
        while start < len(pieces):
            limit = min(MAX_ENCODED_WORD, self.room())
            if limit < _MIN_WORD:
                self.lines.append("")
                self.used = 1
                limit = MAX_ENCODED_WORD
            size, end, after_space = _OVERHEAD, start, None
            while end < len(pieces) and size + len(pieces[end]) <= limit:
                size += len(pieces[end])
                end += 1
                if pieces[end - 1] == "_" and text[end - 1] == " ":
                    after_space = end
            if end < len(pieces) and after_space is not None and after_space > start:
                end = after_space
            self.add(_START + "".join(pieces[start:end]) + _END)
            start = end


def _fold(name: str, value: str, *, plain: Callable[[str], bool], safe: frozenset[str]) -> Folded:
    """``value``'s words as they are where ``plain`` allows, runs of others encoded."""
    lines = _Lines(len(name) + 2)
    words = value.split(" ")
    if "" in words:
        # Leading, trailing or repeated spaces: encoded, they read back exactly.
        lines.add_encoded(value, safe)
        return Folded(lines.lines, value)
    run: list[str] = []
    for word in words:
        if plain(word):
            if run:
                lines.add_encoded(" ".join(run), safe)
                run = []
            lines.add(word)
        else:
            run.append(word)
    if run:
        lines.add_encoded(" ".join(run), safe)
    return Folded(lines.lines, value)


def _plain_text(word: str) -> bool:
    return (
        word.isascii() and word.isprintable() and not looks_encoded(word) and len(word) < MAX_LINE
    )


def _plain_atom(word: str) -> bool:
    return _plain_text(word) and not _SPECIALS & set(word) and len(word) <= MAX_ENCODED_WORD


def unstructured(name: str, value: str) -> Folded:
    """An unstructured header value (Subject), folded and, where needed, encoded."""
    if not value:
        return Folded([""], value)
    return _fold(name, value, plain=_plain_text, safe=_TEXT_SAFE)


def mailbox(name: str, display_name: str | None, address: str) -> Folded:
    """``display name <address>`` (or the bare address), folded and encoded.

    The name's words that are RFC 5322 atoms stay as they are; runs of the
    others (umlauts, specials, "=?") become encoded-words, which need no
    quotes.
    """
    if not display_name:
        return Folded([address], address)
    folded = _fold(name, display_name, plain=_plain_atom, safe=_PHRASE_SAFE)
    lines = _Lines(0)
    lines.lines, lines.used = list(folded.lines), _line_length(name, folded.lines)
    lines.add(f"<{address}>")
    return Folded(lines.lines, f"{display_name} <{address}>")


def _line_length(name: str, lines: tuple[str, ...]) -> int:
    return len(lines[-1]) + (len(name) + 2 if len(lines) == 1 else 1)
