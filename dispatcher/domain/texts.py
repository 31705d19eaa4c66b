"""Built-in texts and the choice of the text an e-mail is written in."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

import yaml

from dispatcher.domain.kinds import KINDS, Kind
from dispatcher.domain.locales import PRODUCT_LOCALE, fallback_chain, language_of, normalize

# When neither the recipient's nor the group's language has built-in texts,
# English is the one most recipients can read.
LAST_RESORT_LOCALE = "en"
BUILTIN_LOCALES = ("de", "en")


@dataclass(frozen=True)
class GroupText:
    """A group's own subject and body for one section in one locale."""

    subject: str | None
    body: str | None
    subject_source: str  # "group" or "group translation (en)"
    body_source: str


@dataclass(frozen=True)
class ResolvedText:
    """The subject and body an e-mail will be rendered from, and their origin."""

    kind: str
    locale: str
    subject: str
    body: str
    subject_source: str
    body_source: str


def _filled(value: str | None) -> bool:
    return bool(value and value.strip())


@functools.cache
def builtin_texts() -> Mapping[str, Mapping[str, tuple[str, str]]]:
    """Built-in texts by locale, then kind name: (subject, body)."""
    result: dict[str, Mapping[str, tuple[str, str]]] = {}
    for locale in BUILTIN_LOCALES:
        raw = yaml.safe_load(
            resources.files("dispatcher.domain.defaults")
            .joinpath(f"{locale}.yaml")
            .read_text("utf-8")
        )
        missing = [kind.name for kind in KINDS if kind.name not in raw]
        if missing:  # pragma: no cover - guarded by a test of the shipped files
            raise RuntimeError(f"built-in texts for {locale} lack {', '.join(missing)}")
        result[locale] = MappingProxyType(
            {name: (entry["subject"], entry["body"].rstrip("\n")) for name, entry in raw.items()}
        )
    return MappingProxyType(result)


def _builtin_locale(chain: tuple[str, ...]) -> str:
    for tag in chain:
        if language_of(tag) in BUILTIN_LOCALES:
            return language_of(tag)
    return LAST_RESORT_LOCALE


def resolve(
    kind: Kind,
    recipient_locale: str | None,
    default_locale: str | None,
    group_texts: Mapping[tuple[str, str], GroupText],
) -> ResolvedText:
    """Pick the language and texts for one e-mail; never fails for lack of texts.

    The language is the first of the recipient's locale, its language and the
    group's default locale in which the group wrote anything for this e-mail;
    otherwise the first of them with built-in texts. A field the group left
    empty in that language takes the built-in text of the same language, so an
    e-mail never mixes two languages of the group's choosing.
    """
    base = normalize(default_locale) if default_locale else PRODUCT_LOCALE
    recipient = normalize(recipient_locale) if recipient_locale else None
    chain = fallback_chain(recipient, base)
    chosen: GroupText | None = None
    locale = None
    if kind.section is not None:
        for tag in chain:
            text = group_texts.get((tag, kind.section))
            if text is not None and (_filled(text.subject) or _filled(text.body)):
                chosen, locale = text, tag
                break
    builtin_locale = _builtin_locale((locale,) if locale else chain)
    builtin_subject, builtin_body = builtin_texts()[builtin_locale][kind.name]
    builtin_source = f"built-in ({builtin_locale})"
    subject, subject_source = builtin_subject, builtin_source
    body, body_source = builtin_body, builtin_source
    if chosen is not None:
        if chosen.subject is not None and _filled(chosen.subject):
            subject, subject_source = chosen.subject, chosen.subject_source
        if chosen.body is not None and _filled(chosen.body):
            body, body_source = chosen.body, chosen.body_source
    return ResolvedText(
        kind=kind.name,
        locale=locale or builtin_locale,
        subject=subject,
        body=body,
        subject_source=subject_source,
        body_source=body_source,
    )
