"""Language tags: validation and the fallback chain used to pick texts."""

from __future__ import annotations

import langcodes

# The product's own language when nothing else is known: the portal's help
# pages and its first customers are German.
PRODUCT_LOCALE = "de"


def locale_problem(tag: str) -> str | None:
    """Explain why ``tag`` is not a usable BCP 47 language tag, or return None."""
    if not isinstance(tag, str) or not tag:
        return "must be a language tag such as de, en or de-CH"
    if len(tag) > 35 or not langcodes.tag_is_valid(tag):
        return f"{tag!r} is not a valid language tag; use one such as de, en or de-CH"
    return None


def normalize(tag: str) -> str:
    """Return the canonical spelling (``de-de`` becomes ``de-DE``)."""
    return str(langcodes.standardize_tag(tag))


def language_of(tag: str) -> str:
    return tag.split("-", 1)[0].lower()


def fallback_chain(recipient: str | None, group_default: str | None) -> tuple[str, ...]:
    """Locales to try, best first: exact tag, its language, the group's default.

    The result never is empty: without any hint it ends in the product locale.
    """
    chain: list[str] = []
    for tag in (recipient, recipient and language_of(recipient), group_default):
        if tag and tag not in chain:
            chain.append(tag)
    if not chain:
        chain.append(PRODUCT_LOCALE)
    return tuple(chain)
