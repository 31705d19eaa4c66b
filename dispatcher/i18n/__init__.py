"""Messages for people, in German and English: one catalogue, read with Babel.

Where the catalogue is
    ``dispatcher/i18n/locale/{de,en}/LC_MESSAGES/messages.po``, gettext PO files
    read at run time with ``babel.messages.pofile`` (no compile step; the
    wheel carries the ``.po`` files). ``tests/unit/test_i18n.py`` checks that
    both hold every key, with the same placeholders, and that the validation
    corpora come out in German with nothing left in English.

How a message finds its translation
    The product says what is wrong in English, deep down, with the values that
    make it useful (``customer group 'DEMO' is not set up ...``), and the
    command line prints it as it is. The API translates at its boundary: a
    catalogue key (msgid) is the English message as a template, with
    ``{name}`` placeholders where the values go, and ``translate`` matches the
    English text against the templates, takes the values out and puts them
    into the translation. A placeholder named ``{message}``, ``{reason}``,
    ``{problem}`` (or ``{message2}`` ...) holds a message of its own (the
    problem of a nested check) and is translated in turn; one named
    ``{detail}`` holds another library's words (email-validator's reason,
    Jinja's syntax error), translated where the catalogue knows them and
    kept as they are otherwise; a placeholder named ``{status}`` or
    ``{kind_name}`` holds an identifier and is replaced by its label
    (``status.dead``, ``kind.password.reset``) where the catalogue has one;
    every other placeholder is data, copied.
    A list of template findings ("line 1: ...; line 3: ...") is translated
    finding by finding.

Why at the boundary, not keys raised from below
    - The English messages keep being the product's one voice on the command
      line and in logs; no layer below the API learns about languages, and
      the domain stays pure.
    - Messages the product does not write itself are covered the same way:
      email-validator's reasons, pydantic's request errors, and reasons
      stored in the record by workers long before anyone asked in German.
    - The coupling this brings (an English message edited without its key
      no longer translates) is caught by the tests: every message the
      validation corpora produce must translate, and an untranslated one
      still reaches the reader in English, never as a key.
    The English catalogue is not an identity: its translations drop the
    command-line advice ("pass --name", "see it with: dispatcher groups
    show", "run: dispatcher ...") that a web UI user cannot follow; the
    command line keeps it. ``strip_cli_advice`` removes it from a message no
    template matched.

Which language
    ``negotiate(Accept-Language)``: German when the header prefers ``de``,
    else English (also without a header: programs get English). The web UI
    sends ``de`` or ``en`` from its language switch.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import overload

from babel.messages.pofile import read_po

LANGUAGES = ("de", "en")
DEFAULT_LANGUAGE = "en"
# Placeholders that hold a message of their own, translated in turn; a
# "detail" (another library's words) is translated when the catalogue knows it.
_NESTED = re.compile(r"(?:message|reason|problem)\d*")
_DETAIL = re.compile(r"detail\d*")
# Placeholders that hold an identifier, shown as its label (status.dead).
_LABELLED = {"status": "status.", "kind_name": "kind."}
# Template checks report every finding, joined: "line 1: ...; line 3: ...".
_FINDINGS = re.compile(r"; (?=line \d+: )")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_MAX_DEPTH = 4
_QUALITY = re.compile(r"^\s*q\s*=\s*([0-9.]+)\s*$")


def negotiate(accept_language: str | None) -> str:
    """``de`` or ``en`` for an ``Accept-Language`` header; English unless ``de`` is preferred."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = item.partition(";")
        language = tag.strip().lower().split("-")[0]
        if language not in LANGUAGES:
            continue
        quality = 1.0
        if params.strip():
            match = _QUALITY.match(params)
            try:
                quality = float(match.group(1)) if match else 0.0
            except ValueError:
                quality = 0.0
        if quality > 0:
            ranked.append((quality, -position, language))
    return max(ranked)[2] if ranked else DEFAULT_LANGUAGE


@dataclass(frozen=True)
class _Template:
    msgid: str
    pattern: re.Pattern[str]
    prefix: str
    literal_length: int


def _compile(msgid: str) -> _Template:
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    for match in _PLACEHOLDER.finditer(msgid):
        parts.append(re.escape(msgid[position : match.start()]))
        name = match.group(1)
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
        seen.add(name)
        position = match.end()
    parts.append(re.escape(msgid[position:]))
    literal = _PLACEHOLDER.sub("", msgid)
    first = _PLACEHOLDER.search(msgid)
    prefix = msgid[: first.start()] if first else msgid
    return _Template(msgid, re.compile("".join(parts), re.DOTALL), prefix, len(literal))


@dataclass(frozen=True)
class Catalogue:
    """One language's translations: exact keys and templates."""

    language: str
    strings: Mapping[str, str]
    templates: tuple[_Template, ...]

    @classmethod
    def load(cls, language: str) -> Catalogue:
        path = resources.files("dispatcher.i18n").joinpath(
            f"locale/{language}/LC_MESSAGES/messages.po"
        )
        with path.open("rb") as handle:
            catalogue = read_po(handle, locale=language)
        strings = {
            str(message.id): str(message.string)
            for message in catalogue
            if message.id and message.string and isinstance(message.id, str)
        }
        templates = sorted(
            (_compile(msgid) for msgid in strings if _PLACEHOLDER.search(msgid)),
            key=lambda template: -template.literal_length,
        )
        return cls(language, strings, tuple(templates))

    def lookup(self, text: str, depth: int = 0) -> str | None:
        """The translation of ``text``, or None when no key or template matches it."""
        exact = self.strings.get(text)
        if exact is not None:
            return exact
        if depth >= _MAX_DEPTH or len(text) > 5000:
            return None
        for template in self.templates:
            if text.startswith(template.prefix):
                match = template.pattern.fullmatch(text)
                values = self._values(match.groupdict(), depth) if match else None
                if values is not None:
                    return _fill(self.strings[template.msgid], values)
        if _FINDINGS.search(text):
            parts = [self.lookup(part, depth + 1) for part in _FINDINGS.split(text)]
            if all(part is not None for part in parts):
                return "; ".join(part for part in parts if part is not None)
        return None

    def _values(self, found: Mapping[str, str], depth: int) -> dict[str, str] | None:
        """A template's values, nested messages translated; None if one cannot be."""
        values: dict[str, str] = {}
        for name, value in found.items():
            if _DETAIL.fullmatch(name):
                values[name] = self.lookup(value, depth + 1) or value
            elif name in _LABELLED:
                values[name] = self.strings.get(_LABELLED[name] + value, value)
            elif _NESTED.fullmatch(name):
                nested = self.lookup(value, depth + 1)
                if nested is None:
                    return None
                values[name] = nested
            else:
                values[name] = value
        return values


def _fill(text: str, values: Mapping[str, str]) -> str:
    """``text`` with its placeholders replaced, in one pass (a value may hold braces)."""
    return _PLACEHOLDER.sub(lambda found: values.get(found.group(1), found.group(0)), text)


@functools.cache
def catalogue(language: str) -> Catalogue:
    if language not in LANGUAGES:
        raise ValueError(f"no catalogue for {language!r}; there are: {', '.join(LANGUAGES)}")
    return Catalogue.load(language)


# Advice only the command line can follow; never shown by the API.
_CLI_ADVICE = re.compile(
    r"(?:[;,]?\s*\(?(?:see it with|see|add it first with|save some with|list them with|"
    r"create one with|run|then run|use a token with that scope)\s*:?\s*dispatcher [^;)]*\)?)"
    r"|(?:;?\s*pass --\w+(?: \"[^\"]*\")?)"
    r"|(?:\s*\(dispatcher [^)]*\))",
    re.IGNORECASE,
)


def strip_cli_advice(text: str) -> str:
    """``text`` without advice to run a command (the web UI cannot)."""
    stripped = _CLI_ADVICE.sub("", text).strip()
    stripped = re.sub(r"[;,:]\s*$", "", stripped)
    return stripped or text


def translate(text: str, language: str) -> str:
    """``text`` in ``language``; when no key matches, the English text without CLI advice."""
    if not text:
        return text
    found = catalogue(language).lookup(text)
    return found if found is not None else strip_cli_advice(text)


@overload
def translate_record(text: str, language: str) -> str: ...
@overload
def translate_record(text: None, language: str) -> None: ...
def translate_record(text: str | None, language: str) -> str | None:
    """A text kept in the record, in ``language`` where the catalogue knows it.

    Delivery replies, bounce notes and suppression reasons are partly the
    product's words (``the address is on the suppression list: ...``) and
    partly other people's (a relay's reply, a reason an administrator typed):
    those stay exactly as they were written.
    """
    if not text:
        return text
    found = catalogue(language).lookup(text)
    return found if found is not None else text


def is_translated(text: str, language: str) -> bool:
    """Whether the catalogue of ``language`` has a key or template for ``text``."""
    return catalogue(language).lookup(text) is not None


def label(key: str, language: str) -> str:
    """The catalogue's text for a label key (``status.dead``); the key when it has none."""
    return catalogue(language).strings.get(key, key)


def source_label(source: str, language: str) -> str:
    """Where an effective text came from ("built-in (de)", "group translation (en)"), for people."""
    return catalogue(language).lookup(f"source.{source}") or source


def keyed(key: str, language: str, **values: str) -> str | None:
    """The catalogue's text for a key with placeholders (``route.group {code}``), filled in.

    None when the catalogue has no such key: the caller decides what to show.
    """
    text = catalogue(language).strings.get(key)
    return None if text is None else _fill(text, values)
